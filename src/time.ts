// Times for people: `2026-12-01 12:25:19 IST`, in the operator's zone (TZ, else the system's).
// JSON output keeps ISO-8601 in UTC; only human output goes through here.

/** Locales tried for a zone's short name: the first that gives letters (IST, EST, CET) wins. */
const NAME_LOCALES = ['en-US', 'en-IN', 'en-GB'] as const;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(locale: string): Intl.DateTimeFormat {
  let f = formatters.get(locale);
  if (!f) {
    f = new Intl.DateTimeFormat(locale, {
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'short',
    });
    formatters.set(locale, f);
  }
  return f;
}

export function humanTime(iso: string | null | undefined, options: { milliseconds?: boolean } = {}): string {
  if (iso === null || iso === undefined || iso === '') return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  let zone = '';
  let parts: Intl.DateTimeFormatPart[] = [];
  for (const locale of NAME_LOCALES) {
    parts = formatter(locale).formatToParts(date);
    zone = parts.find((p) => p.type === 'timeZoneName')?.value ?? '';
    if (/^[A-Z]{2,5}$/.test(zone)) break;
  }
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? '';
  const ms = options.milliseconds ? `.${String(date.getMilliseconds()).padStart(3, '0')}` : '';
  return `${part('year')}-${part('month')}-${part('day')} ${part('hour')}:${part('minute')}:${part('second')}${ms} ${zone}`.trimEnd();
}
