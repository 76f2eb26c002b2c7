// Where an endpoint may point (docs/webhooks-out.md, URL rules): http or https, and no address that
// is not public unicast (loopback, private, link-local, unique-local, CGNAT, multicast, reserved…)
// unless the endpoint was added with --allow-private. Checked when the endpoint is added, and again
// at every connection on the very addresses the connection uses: `guardedLookup` is the socket's
// DNS lookup, so a name that resolved to a public address at creation and to 127.0.0.1 later (DNS
// rebinding) is refused then, and an IP literal is checked before any socket is opened.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export type UrlRefusal = { readonly code: 'invalid_input' | 'address_not_allowed'; readonly message: string };

/** The range name ipaddr.js gives an address; only 'unicast' is public. */
export function addressRange(address: string): string {
  return ipaddr.process(address).range();
}

function rangeName(address: string): string {
  const range = addressRange(address);
  return range === 'unicast' ? 'not global unicast' : range;
}

/** Global unicast IPv6 (ipaddr.js calls every unassigned or IPv4-compatible address 'unicast' too). */
const GLOBAL_IPV6 = ipaddr.parseCIDR('2000::/3');

export function addressAllowed(address: string, allowPrivate: boolean): boolean {
  if (allowPrivate) return true;
  const parsed = ipaddr.process(address);
  if (parsed.range() !== 'unicast') return false;
  return parsed.kind() === 'ipv4' || parsed.match(GLOBAL_IPV6);
}

/** Parses an endpoint URL: http(s), a host, no credentials, at most 2,048 characters. */
export function parseEndpointUrl(raw: string): URL | UrlRefusal {
  if (raw.length > 2048) return { code: 'invalid_input', message: 'the URL is longer than 2,048 characters' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { code: 'invalid_input', message: `not a URL: ${raw}` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { code: 'invalid_input', message: `the URL must be http or https, not ${url.protocol.replace(/:$/, '')}` };
  }
  if (url.username !== '' || url.password !== '') return { code: 'invalid_input', message: 'the URL must not carry credentials' };
  if (url.hostname === '') return { code: 'invalid_input', message: 'the URL has no host' };
  if (url.hash !== '') return { code: 'invalid_input', message: 'the URL must not have a #fragment' };
  return url;
}

/** The URL's host as the resolver and the socket see it (brackets of an IPv6 literal removed). */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** Every address a host resolves to (an IP literal is itself). */
export async function resolveHost(host: string): Promise<string[]> {
  if (isIP(host) !== 0) return [host];
  return new Promise((resolve, reject) =>
    dnsLookup(host, { all: true, verbatim: true }, (error, addresses) =>
      error ? reject(error) : resolve(addresses.map((a) => a.address)),
    ),
  );
}

/** Checks where a URL leads now: every address it resolves to must be allowed. */
export async function checkDestination(url: URL, allowPrivate: boolean): Promise<UrlRefusal | null> {
  let addresses: string[];
  try {
    addresses = await resolveHost(hostOf(url));
  } catch (error) {
    return {
      code: 'invalid_input',
      message: `${url.hostname} does not resolve (${(error as NodeJS.ErrnoException).code ?? 'lookup failed'})`,
    };
  }
  const refused = addresses.filter((a) => !addressAllowed(a, allowPrivate));
  if (refused.length > 0) {
    return {
      code: 'address_not_allowed',
      message: `${url.hostname} resolves to ${refused.join(', ')} (${rangeName(refused[0] as string)}): not a public address; add the endpoint with --allow-private to allow it`,
    };
  }
  return null;
}

export class AddressNotAllowed extends Error {
  override name = 'AddressNotAllowed';
  readonly code = 'ADDRESS_NOT_ALLOWED';
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http(s).request: resolves as node would, then refuses the connection unless every
 * address is allowed. The socket connects only to addresses this returned, so the address checked
 * is the address connected to.
 */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true, verbatim: true }, (error, addresses) => {
      if (error) return callback(error, options.all ? [] : '');
      const refused = addresses.filter((a) => !addressAllowed(a.address, allowPrivate));
      if (refused.length > 0 || addresses.length === 0) {
        return callback(
          new AddressNotAllowed(
            `${hostname} resolves to ${refused.map((a) => a.address).join(', ') || 'nothing'}: not a public address (the endpoint was not added with --allow-private)`,
          ),
          options.all ? [] : '',
        );
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };
}
