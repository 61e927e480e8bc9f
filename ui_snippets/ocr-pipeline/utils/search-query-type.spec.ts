import { QueryType } from '$lib/constants';
import {
  getTextSearch,
  getTextSearchPayload,
  isQueryTypeAvailable,
  queryTypeFields,
  toQueryType,
} from '$lib/utils/search-query-type';

describe('search query types', () => {
  it('maps every query type to a search field', () => {
    expect(Object.keys(queryTypeFields).sort()).toEqual(Object.values(QueryType).sort());
  });

  describe('isQueryTypeAvailable', () => {
    it('always offers the types that do not depend on a feature', () => {
      for (const type of ['smart', 'metadata', 'description'] as const) {
        expect(isQueryTypeAvailable(type, {})).toBe(true);
        expect(isQueryTypeAvailable(type, { ocr: false })).toBe(true);
      }
    });

    it('offers OCR only when the server has OCR enabled', () => {
      expect(isQueryTypeAvailable('ocr', { ocr: true })).toBe(true);
      expect(isQueryTypeAvailable('ocr', { ocr: false })).toBe(false);
      expect(isQueryTypeAvailable('ocr', {})).toBe(false);
    });
  });

  describe('toQueryType', () => {
    it('keeps known and available types', () => {
      expect(toQueryType('metadata', { ocr: false })).toBe('metadata');
      expect(toQueryType('description', { ocr: false })).toBe('description');
      expect(toQueryType('ocr', { ocr: true })).toBe('ocr');
    });

    it('falls back to smart search', () => {
      expect(toQueryType(null, { ocr: true })).toBe(QueryType.SMART);
      expect(toQueryType(undefined, { ocr: true })).toBe(QueryType.SMART);
      expect(toQueryType('', { ocr: true })).toBe(QueryType.SMART);
      expect(toQueryType('unknown', { ocr: true })).toBe(QueryType.SMART);
      expect(toQueryType('ocr', { ocr: false })).toBe(QueryType.SMART);
    });
  });

  describe('getTextSearchPayload', () => {
    it('puts the text into the field of the search type', () => {
      expect(getTextSearchPayload('smart', 'beach')).toEqual({ query: 'beach' });
      expect(getTextSearchPayload('metadata', 'IMG_1234')).toEqual({ originalFileName: 'IMG_1234' });
      expect(getTextSearchPayload('description', 'hiking')).toEqual({ description: 'hiking' });
      expect(getTextSearchPayload('ocr', 'latte')).toEqual({ ocr: 'latte' });
    });

    it('leaves out empty text', () => {
      expect(getTextSearchPayload('ocr', '')).toEqual({});
      expect(getTextSearchPayload('smart', undefined)).toEqual({});
      expect(getTextSearchPayload('metadata', null)).toEqual({});
    });
  });

  describe('getTextSearch', () => {
    it('finds the type and text of a search', () => {
      expect(getTextSearch({ query: 'beach' })).toEqual({ type: 'smart', text: 'beach' });
      expect(getTextSearch({ originalFileName: 'IMG_1234' })).toEqual({ type: 'metadata', text: 'IMG_1234' });
      expect(getTextSearch({ description: 'hiking', city: 'Hanoi' })).toEqual({ type: 'description', text: 'hiking' });
      expect(getTextSearch({ ocr: '咖啡', isFavorite: true })).toEqual({ type: 'ocr', text: '咖啡' });
    });

    it('returns nothing for searches without text', () => {
      expect(getTextSearch({})).toBeUndefined();
      expect(getTextSearch({ ocr: '' })).toBeUndefined();
      expect(getTextSearch({ city: 'Hanoi', personIds: ['a'] })).toBeUndefined();
    });

    it('round-trips with getTextSearchPayload', () => {
      for (const type of Object.values(QueryType)) {
        expect(getTextSearch(getTextSearchPayload(type, 'text'))).toEqual({ type, text: 'text' });
      }
    });
  });
});
