import { BadRequestException } from '@nestjs/common';
import { OcrHybridMethod } from 'src/enum';
import { SearchService } from 'src/services/search.service';
import { authStub } from 'test/fixtures/auth.stub';
import { newTestService, ServiceMocks } from 'test/utils';
import { beforeEach, vitest } from 'vitest';

vitest.useFakeTimers();

describe('SearchService (immich-aio OCR ranking)', () => {
  let sut: SearchService;
  let mocks: ServiceMocks;

  beforeEach(() => {
    ({ sut, mocks } = newTestService(SearchService));
    mocks.partner.getAll.mockResolvedValue([]);
    mocks.search.searchSmart.mockResolvedValue({ hasNextPage: false, items: [] });
    mocks.search.searchOcrRanked.mockResolvedValue({ hasNextPage: false, items: [] });
    mocks.machineLearning.encodeText.mockResolvedValue('[1, 2, 3]');
  });

  describe('ocr: prefix', () => {
    it('should search recognised text only, ranked', async () => {
      await sut.searchSmart(authStub.user1, { query: 'ocr:发票' });

      expect(mocks.machineLearning.encodeText).not.toHaveBeenCalled();
      expect(mocks.search.searchSmart).not.toHaveBeenCalled();
      expect(mocks.search.searchOcrRanked).toHaveBeenCalledWith(
        { page: 1, size: 100 },
        expect.objectContaining({ ocrText: '发票', userIds: [authStub.user1.user.id], visibility: 'not-locked' }),
      );
    });

    it('should accept a full-width colon, spaces and any case', async () => {
      await sut.searchSmart(authStub.user1, { query: '  OCR： 火车票 ', page: 2, size: 20 });

      expect(mocks.search.searchOcrRanked).toHaveBeenCalledWith(
        { page: 2, size: 20 },
        expect.objectContaining({ ocrText: '火车票' }),
      );
    });

    it('should keep the request filters', async () => {
      const albumIds = ['2a8f2f8e-3f4c-4a38-9a25-7f2a7d1e5b2c'];
      await sut.searchSmart(authStub.user1, { query: 'ocr:invoice', albumIds, isFavorite: true });

      expect(mocks.search.searchOcrRanked).toHaveBeenCalledWith(
        { page: 1, size: 100 },
        expect.objectContaining({ ocrText: 'invoice', albumIds, isFavorite: true }),
      );
    });

    it('should reject a prefix without text', async () => {
      await expect(sut.searchSmart(authStub.user1, { query: 'ocr: ' })).rejects.toBeInstanceOf(BadRequestException);

      expect(mocks.search.searchOcrRanked).not.toHaveBeenCalled();
    });

    it('should report the next page', async () => {
      mocks.search.searchOcrRanked.mockResolvedValue({ hasNextPage: true, items: [] });

      const result = await sut.searchSmart(authStub.user1, { query: 'ocr:发票', size: 10 });

      expect(result.assets.nextPage).toBe('2');
    });

    it('should work when CLIP is disabled but OCR is enabled', async () => {
      mocks.systemMetadata.get.mockResolvedValue({ machineLearning: { clip: { enabled: false } } });

      await sut.searchSmart(authStub.user1, { query: 'ocr:发票' });

      expect(mocks.search.searchOcrRanked).toHaveBeenCalled();
    });

    it('should treat text that merely contains ocr: as a CLIP query', async () => {
      await sut.searchSmart(authStub.user1, { query: 'receipt ocr:发票' });

      expect(mocks.search.searchOcrRanked).not.toHaveBeenCalled();
      expect(mocks.machineLearning.encodeText).toHaveBeenCalledWith('receipt ocr:发票', expect.anything());
    });
  });

  describe('hybrid ranking', () => {
    it('should fuse CLIP and OCR with reciprocal rank fusion by default', async () => {
      await sut.searchSmart(authStub.user1, { query: '发票' });

      expect(mocks.search.searchSmart).toHaveBeenCalledWith(
        { page: 1, size: 100 },
        expect.objectContaining({
          embedding: '[1, 2, 3]',
          hybrid: { text: '发票', method: OcrHybridMethod.Rrf, rrfK: 60, clipWeight: 1, ocrWeight: 1 },
        }),
      );
    });

    it('should use the configured method and weights', async () => {
      mocks.systemMetadata.get.mockResolvedValue({
        machineLearning: {
          ocr: { hybridSearch: { method: OcrHybridMethod.Weighted, clipWeight: 0.8, ocrWeight: 0.2, rrfK: 10 } },
        },
      });

      await sut.searchSmart(authStub.user1, { query: 'receipt' });

      expect(mocks.search.searchSmart).toHaveBeenCalledWith(
        { page: 1, size: 100 },
        expect.objectContaining({
          hybrid: { text: 'receipt', method: OcrHybridMethod.Weighted, rrfK: 10, clipWeight: 0.8, ocrWeight: 0.2 },
        }),
      );
    });

    it('should not rank by OCR when hybrid search is turned off', async () => {
      mocks.systemMetadata.get.mockResolvedValue({ machineLearning: { ocr: { hybridSearch: { enabled: false } } } });

      await sut.searchSmart(authStub.user1, { query: 'receipt' });

      expect(mocks.search.searchSmart).toHaveBeenCalledWith(
        { page: 1, size: 100 },
        { query: 'receipt', embedding: '[1, 2, 3]', userIds: [authStub.user1.user.id], visibility: 'not-locked' },
      );
    });

    it('should not rank by OCR for a search by example asset', async () => {
      const assetId = '8f6b3f0e-2b0b-4c5e-9d8a-1a2b3c4d5e6f';
      mocks.access.asset.checkOwnerAccess.mockResolvedValue(new Set([assetId]));
      mocks.search.getEmbedding.mockResolvedValue({ assetId, embedding: '[4, 5, 6]' });

      await sut.searchSmart(authStub.user1, { queryAssetId: assetId });

      expect(mocks.search.searchSmart).toHaveBeenCalledWith(
        { page: 1, size: 100 },
        expect.not.objectContaining({ hybrid: expect.anything() }),
      );
    });
  });

  describe('machine learning unavailable', () => {
    beforeEach(() => {
      mocks.machineLearning.encodeText.mockRejectedValue(new Error('Machine learning request failed for all URLs'));
    });

    it('should answer a plain query with the OCR ranking alone and say so', async () => {
      await sut.searchSmart(authStub.user1, { query: '发票', page: 2, size: 20 });

      expect(mocks.search.searchSmart).not.toHaveBeenCalled();
      expect(mocks.search.searchOcrRanked).toHaveBeenCalledWith(
        { page: 2, size: 20 },
        expect.objectContaining({ ocrText: '发票', userIds: [authStub.user1.user.id], visibility: 'not-locked' }),
      );
      expect(mocks.logger.warn).toHaveBeenCalledWith(expect.stringContaining('OCR ranking only'));
    });

    it('should fail as upstream does when OCR is disabled too', async () => {
      mocks.systemMetadata.get.mockResolvedValue({ machineLearning: { ocr: { enabled: false } } });

      await expect(sut.searchSmart(authStub.user1, { query: '发票' })).rejects.toThrow('failed for all URLs');

      expect(mocks.search.searchOcrRanked).not.toHaveBeenCalled();
    });
  });

  describe('OCR filter of metadata search', () => {
    beforeEach(() => {
      mocks.search.searchMetadata.mockResolvedValue({ hasNextPage: false, items: [] });
    });

    it('should rank matches instead of filtering them', async () => {
      await sut.searchMetadata(authStub.user1, { ocr: '发票', isFavorite: true });

      expect(mocks.search.searchMetadata).not.toHaveBeenCalled();
      expect(mocks.search.searchOcrRanked).toHaveBeenCalledWith(
        { page: 1, size: 250 },
        expect.objectContaining({
          ocr: undefined,
          ocrText: '发票',
          isFavorite: true,
          userIds: [authStub.user1.user.id],
          visibility: 'not-locked',
        }),
      );
    });

    it('should leave searches without OCR text to upstream', async () => {
      await sut.searchMetadata(authStub.user1, { originalFileName: 'IMG_1.jpg' });

      expect(mocks.search.searchOcrRanked).not.toHaveBeenCalled();
      expect(mocks.search.searchMetadata).toHaveBeenCalled();
    });

    it('should keep the upstream filter when OCR is disabled', async () => {
      mocks.systemMetadata.get.mockResolvedValue({ machineLearning: { ocr: { enabled: false } } });

      await sut.searchMetadata(authStub.user1, { ocr: '发票' });

      expect(mocks.search.searchOcrRanked).not.toHaveBeenCalled();
      expect(mocks.search.searchMetadata).toHaveBeenCalledWith(
        { page: 1, size: 250 },
        expect.objectContaining({ ocr: '发票' }),
      );
    });
  });

  describe('with OCR disabled', () => {
    beforeEach(() => {
      mocks.systemMetadata.get.mockResolvedValue({ machineLearning: { ocr: { enabled: false } } });
    });

    it('should search exactly as upstream', async () => {
      await sut.searchSmart(authStub.user1, { query: 'receipt' });

      expect(mocks.search.searchSmart).toHaveBeenCalledWith(
        { page: 1, size: 100 },
        { query: 'receipt', embedding: '[1, 2, 3]', userIds: [authStub.user1.user.id], visibility: 'not-locked' },
      );
    });

    it('should send an ocr: query to CLIP unchanged', async () => {
      await sut.searchSmart(authStub.user1, { query: 'ocr:发票' });

      expect(mocks.search.searchOcrRanked).not.toHaveBeenCalled();
      expect(mocks.machineLearning.encodeText).toHaveBeenCalledWith('ocr:发票', expect.anything());
      expect(mocks.search.searchSmart).toHaveBeenCalledWith(
        { page: 1, size: 100 },
        { query: 'ocr:发票', embedding: '[1, 2, 3]', userIds: [authStub.user1.user.id], visibility: 'not-locked' },
      );
    });
  });
});
