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

// Not public unicast, in every spelling: refused without --allow-private.
export const PRIVATE_ENDPOINT_URLS = [
  'http://127.0.0.1/hook',
  'http://localhost/hook',
  'http://10.0.0.1/',
  'http://172.16.0.1/',
  'http://192.168.1.1/',
  'http://169.254.169.254/latest/meta-data/',
  'http://100.64.0.1/',
  'http://0.0.0.0/',
  'http://224.0.0.1/',
  'http://[::1]/',
  'http://[fc00::1]/',
  'http://[fe80::1]/',
  'http://[::ffff:127.0.0.1]/',
  'http://2130706433/',
  'http://0x7f000001/',
  'http://127.1/',
  'http://127.0.0.1/x',
  'http://localhost/x',
  'http://LOCALHOST:8080/',
  'http://255.255.255.255/',
  'http://[::]/',
  'http://[::ffff:10.0.0.1]/',
  'https://127.0.0.1:443/',
];
