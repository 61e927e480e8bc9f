import { QueryType, validQueryTypes } from '$lib/constants';
import type { MetadataSearchDto, SmartSearchDto } from '@immich/sdk';

/** A search type as stored in local storage and used by the search options ('smart', 'metadata', ...) */
export type QueryTypeValue = `${QueryType}`;

type SearchDto = SmartSearchDto | MetadataSearchDto;
type TextSearchFields = Pick<SmartSearchDto, 'query'> &
  Pick<MetadataSearchDto, 'originalFileName' | 'description' | 'ocr'>;

/** The field of the search request that carries the text typed for each search type */
export const queryTypeFields = {
  smart: 'query',
  metadata: 'originalFileName',
  description: 'description',
  ocr: 'ocr',
} as const satisfies Record<QueryTypeValue, keyof TextSearchFields>;

/** What the server supports, as far as the search types depend on it (`$featureFlags`) */
export interface QueryTypeFeatures {
  ocr?: boolean;
}

export const isQueryTypeAvailable = (type: QueryTypeValue, features: QueryTypeFeatures) =>
  type !== QueryType.OCR || !!features.ocr;

/**
 * Turns a stored search type into one that can be used right now: unknown values and search types the server does not
 * offer (OCR when it is turned off) fall back to smart search.
 */
export const toQueryType = (value: string | null | undefined, features: QueryTypeFeatures): QueryTypeValue => {
  if (value && validQueryTypes.has(value) && isQueryTypeAvailable(value as QueryTypeValue, features)) {
    return value as QueryTypeValue;
  }
  return QueryType.SMART;
};

/** The text part of a search request, e.g. `{ ocr: 'latte' }`; empty when there is no text */
export const getTextSearchPayload = (type: QueryTypeValue, text: string | undefined | null): TextSearchFields => {
  if (!text) {
    return {};
  }
  return { [queryTypeFields[type]]: text };
};

/** The search type and text of an existing search request, used to fill in the search options again */
export const getTextSearch = (search: SearchDto): { type: QueryTypeValue; text: string } | undefined => {
  const fields = search as TextSearchFields;
  for (const [type, field] of Object.entries(queryTypeFields) as [QueryTypeValue, keyof TextSearchFields][]) {
    const text = fields[field];
    if (typeof text === 'string' && text) {
      return { type, text };
    }
  }
};
