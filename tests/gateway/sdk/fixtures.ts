// Search requests written against @immich/sdk 3.2.2's own types (Immich's API 3.2): `tsc --strict` proves
// each one is a request the v3.2 web app or an SDK user can send. Running the compiled file prints them as
// JSON for tests/gateway/test_sdk_fixtures.py, which sends them through the gateway.
import {
  AssetOrder,
  AssetTypeEnum,
  AssetVisibility,
  SearchOrderField,
  type MetadataSearchDto,
  type SmartSearchDto,
} from '@immich/sdk';

export const metadata = {
  filterOcr: { filter: { ocr: { matches: '发票' } }, size: 2 },
  filterOcrWithUnion: {
    filter: { ocr: { matches: '发票' }, or: [{ isFavorite: { eq: true } }, { type: { eq: AssetTypeEnum.Video } }] },
  },
  orderByRating: {
    filter: { ocr: { matches: '发票' }, visibility: { eq: AssetVisibility.Timeline } },
    orderBy: { field: SearchOrderField.Rating, direction: AssetOrder.Asc },
  },
  flatOcr: { ocr: '发票', visibility: AssetVisibility.Timeline, withExif: true },
  deprecatedMixedWithFilter: { ocr: '发票', filter: { ocr: { matches: '发票' } } },
} satisfies Record<string, MetadataSearchDto>;

export const smart = {
  ocrPrefixWithFilter: { query: 'ocr:发票', filter: { isFavorite: { eq: true } } },
  ocrPrefixFlat: { query: 'ocr:发票', visibility: AssetVisibility.Timeline, language: 'zh-CN' },
  plain: { query: '发票', size: 10 },
} satisfies Record<string, SmartSearchDto>;

console.log(JSON.stringify({ metadata, smart }));
