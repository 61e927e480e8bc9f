import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import { OcrHybridMethod } from 'src/enum';
import { DB } from 'src/schema';
import {
  assetSearchQuery,
  hybridCandidateDepth,
  hybridSearchQuery,
  ocrRankedSearchQuery,
  withOcrRank,
} from 'src/utils/ocr-ranking';
import { describe, expect, it } from 'vitest';

// Compiles queries only; the SQL functions they call are exercised against PostgreSQL by immich-aio's own tests.
const kysely = new Kysely<DB>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

const userId = '3fe388e4-2078-44d7-b36c-39d9dee3a657';
const personId = '0ad7e0a6-4c16-4ba4-a7e4-0ea0c0d4c4f1';
const rrf = { text: '发票', method: OcrHybridMethod.Rrf, rrfK: 60, clipWeight: 1, ocrWeight: 1 };

describe('ocr ranking', () => {
  describe('withOcrRank', () => {
    it('should match and rank through the immich_aio functions', () => {
      const query = withOcrRank(assetSearchQuery(kysely, { userIds: [userId] }), '发票').compile();

      expect(query.sql).toContain('inner join immich_aio.asset_ocr_document as "ocr_document"');
      expect(query.sql).toContain('ocr_document.document @@ immich_aio.ocr_query($');
      expect(query.sql).toContain('immich_aio.ocr_rank(ocr_document.document, immich_aio.ocr_query($');
      expect(query.parameters).toContain('发票');
      expect(query.parameters).toContain(`{${userId}}`);
    });

    it('should pass odd text as a parameter, never as SQL', () => {
      const text = `'); drop table asset; --`;
      const query = withOcrRank(assetSearchQuery(kysely, {}), text).compile();

      expect(query.sql).not.toContain('drop table');
      expect(query.parameters).toContain(text);
    });
  });

  describe('ocrRankedSearchQuery', () => {
    it('should order matches by relevance, then by id, one page at a time', () => {
      const query = ocrRankedSearchQuery(kysely, { page: 2, size: 25 }, { ocrText: '收据', userIds: [userId] }).compile();

      expect(query.sql).toContain('ocr_document.document @@ immich_aio.ocr_query($');
      expect(query.sql).toMatch(/order by "ocrRank" desc, "asset"\."id" asc limit \$\d+ offset \$\d+$/);
      expect(query.parameters).toEqual(expect.arrayContaining(['收据', `{${userId}}`, 26, 25]));
    });
  });

  describe('hybridCandidateDepth', () => {
    it('should keep at least 200 candidates so the first pages stay stable', () => {
      expect(hybridCandidateDepth({ page: 1, size: 100 })).toBe(200);
      expect(hybridCandidateDepth({ page: 2, size: 100 })).toBe(201);
      expect(hybridCandidateDepth({ page: 5, size: 50 })).toBe(251);
    });
  });

  describe('hybridSearchQuery', () => {
    it('should fuse both rankings with immich_aio.hybrid_score', () => {
      const query = hybridSearchQuery(
        kysely,
        { page: 1, size: 100 },
        { embedding: '[1,2,3]', userIds: [userId] },
        rrf,
      ).compile();

      expect(query.sql).toContain('clip_hits as materialized (');
      expect(query.sql).toContain('ocr_hits as materialized (');
      expect(query.sql).toContain('order by smart_search.embedding <=> $');
      expect(query.sql).toContain('row_number() over (order by distance, "assetId") as rank from clip_hits');
      expect(query.sql).toContain('immich_aio.hybrid_score(\n        clip.rank, ocr.rank, clip.distance, ocr."ocrRank"');
      expect(query.sql).toContain('from clip full join ocr on ocr."assetId" = clip."assetId"');
      expect(query.sql).toMatch(/order by "hybrid"\."score" desc, "asset"\."id" asc limit \$\d+ offset \$\d+$/);
      expect(query.parameters).toEqual(expect.arrayContaining(['[1,2,3]', '发票', 'rrf', 60, 1, 200, 101, 0]));
    });

    it('should give weighted fusion the similarity of OCR-only candidates', () => {
      const query = hybridSearchQuery(
        kysely,
        { page: 1, size: 10 },
        { embedding: '[1,2,3]', userIds: [userId] },
        { ...rrf, method: OcrHybridMethod.Weighted, clipWeight: 0.7, ocrWeight: 0.3 },
      ).compile();

      expect(query.sql).toContain(
        'coalesce(clip.distance, (select smart_search.embedding <=> $',
      );
      expect(query.parameters).toEqual(expect.arrayContaining(['weighted', 0.7, 0.3]));
    });

    it('should draw enough candidates from each ranking for the requested page', () => {
      const query = hybridSearchQuery(
        kysely,
        { page: 5, size: 50 },
        { embedding: '[1,2,3]', userIds: [userId] },
        rrf,
      ).compile();

      expect(query.parameters.filter((value) => value === 251)).toHaveLength(2);
      expect(query.parameters).toEqual(expect.arrayContaining([51, 200]));
    });

    it("should apply Immich's filters to both rankings and to the results", () => {
      const query = hybridSearchQuery(
        kysely,
        { page: 1, size: 100 },
        { embedding: '[1,2,3]', userIds: [userId], personIds: [personId], visibility: 'not-locked' },
        rrf,
      ).compile();

      expect(query.sql.match(/"asset"\."visibility" != \$/g)).toHaveLength(3);
      expect(query.sql.match(/"asset"\."deletedAt" is null/g)).toHaveLength(3);
      expect(query.parameters.filter((value) => value === `{${personId}}`)).toHaveLength(3);
    });
  });
});
