// Endpoint URLs every way of adding one refuses (shared by the bad-input table and the CLI tests).
// Endpoint URLs (CONTRACT §7): http or https, a host that resolves, no credentials, no fragment,
// at most 2,048 characters; refused with or without --allow-private.
export const BAD_ENDPOINT_URLS = [
  'not a url',
  'http://',
  '',
  'ftp://example.com/x',
  'file:///etc/passwd',
  'javascript:alert(1)',
  'http://user:pass@example.com/',
  'https://user@example.com/',
  'https://example.com/#top',
  `https://example.com/${'a'.repeat(2048)}`,
  'http://no-such-host.invalid/',
];
