// Catalog identifiers. One rule each, the same as the database's CHECK constraints:
// - SKU code: upper-case ASCII letters, digits, '-' and '_', starting with a letter or digit,
//   1–64 characters. Anything else is refused (never silently rewritten), with a suggestion.
// - Seller handle: lower-case ASCII letters, digits and '-', starting with a letter or digit, 1–63.
import { z } from 'zod';

export const SKU_CODE = /^[A-Z0-9][A-Z0-9_-]{0,63}$/;
export const SELLER_HANDLE = /^[a-z0-9][a-z0-9-]{0,62}$/;

function suggestion(raw: string, canonical: (s: string) => string, pattern: RegExp): string {
  const fixed = canonical(raw);
  return pattern.test(fixed) && fixed !== raw ? ` (did you mean ${fixed}?)` : '';
}

/** The one mapping to a canonical SKU code: only ever suggested (or used to find duplicates), never applied silently. */
export const canonicalSkuCode = (raw: string): string => raw.trim().toUpperCase();

export const SkuCode = z.string().superRefine((raw, ctx) => {
  if (!SKU_CODE.test(raw)) {
    ctx.addIssue({
      code: 'custom',
      message: `SKU code must be upper-case A-Z, digits, '-' or '_' (1–64, starting with a letter or digit)${suggestion(raw, canonicalSkuCode, SKU_CODE)}`,
    });
  }
});

export const SellerHandle = z.string().superRefine((raw, ctx) => {
  if (!SELLER_HANDLE.test(raw)) {
    ctx.addIssue({
      code: 'custom',
      message: `seller handle must be lower-case a-z, digits or '-' (1–63, starting with a letter or digit)${suggestion(raw, (s) => s.trim().toLowerCase(), SELLER_HANDLE)}`,
    });
  }
});

/**
 * Characters refused in free text: control characters, line and paragraph separators, and the
 * bidirectional overrides and isolates that can make an audit line read as something else. Zero-
 * width joiners (U+200C/U+200D) stay allowed: Assamese, Bengali and other Indic text needs them.
 */
const UNSAFE_TEXT = /[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069]/u;

/** Free text an operator types: trimmed, no control or text-direction characters, bounded. */
/** Free text that may be empty (a SKU's title): the same characters refused as in Text. */
export const OptionalText = (max: number) =>
  z
    .string()
    .trim()
    .max(max, `at most ${max} characters`)
    .refine((s) => !UNSAFE_TEXT.test(s), 'must not contain control, line-separator or text-direction characters');

export const Text = (max: number) =>
  z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(max, `at most ${max} characters`)
    .refine((s) => !UNSAFE_TEXT.test(s), 'must not contain control, line-separator or text-direction characters');
