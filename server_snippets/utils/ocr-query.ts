// immich-aio: the `ocr:` prefix of smart-search queries. Parsed on the server so that the web
// client and the mobile apps get it without an update of their own.

/** A smart-search query after looking for the `ocr:` prefix. */
export type ParsedSmartQuery = { kind: 'ocr'; text: string } | { kind: 'clip'; text: string };

// `ocr` in any case, optional spaces, then an ASCII or a full-width colon, at the very start.
const OCR_PREFIX = /^\s*ocr\s*[:：]/iu;

/**
 * `ocr:发票` (also `OCR：发票`, ` ocr : 发票 `) searches recognised text only and yields the text
 * after the prefix, trimmed (possibly empty). Any other query, including one that merely
 * contains "ocr:" further in, stays a CLIP query, unchanged.
 */
export const parseSmartQuery = (query: string): ParsedSmartQuery => {
  const prefix = OCR_PREFIX.exec(query);
  if (!prefix) {
    return { kind: 'clip', text: query };
  }
  return { kind: 'ocr', text: query.slice(prefix[0].length).trim() };
};
