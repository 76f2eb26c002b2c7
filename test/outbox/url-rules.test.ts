// Where an endpoint may point without --allow-private: public unicast only, however it is spelled.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addressAllowed, parseEndpointUrl } from '../../src/outbox/url-rules.ts';

describe('endpoint URL rules', () => {
  test('public unicast addresses are allowed; loopback, private, link-local and every other range are not', () => {
    for (const address of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '2001:4860:4860::8888']) {
      assert.equal(addressAllowed(address, false), true, address);
    }
    for (const address of [
      '127.0.0.1',
      '127.1.2.3',
      '10.0.0.1',
      '172.16.5.4',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      'fc00::1',
      'fd12:3456::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '::7f00:1', // IPv4-compatible ::127.0.0.1
      '::a00:1',
      '4000::1', // not in 2000::/3, the global unicast space
      'ff02::1',
    ]) {
      assert.equal(addressAllowed(address, false), false, address);
      assert.equal(addressAllowed(address, true), true, `${address} with --allow-private`);
    }
  });

  test('only http and https URLs with a host, without credentials or a fragment', () => {
    assert.ok(parseEndpointUrl('https://hooks.example.com/haat') instanceof URL);
    for (const bad of [
      'ftp://example.com/',
      'file:///etc/passwd',
      'https://user:pw@example.com/',
      'https://example.com/#x',
      'not a url',
      `https://e.com/${'a'.repeat(2048)}`,
    ]) {
      assert.ok(!(parseEndpointUrl(bad) instanceof URL), bad);
    }
  });
});
