import { AssetVisibility, ImmichWorker, JobName, JobStatus } from 'src/enum';
import { OCR } from 'src/repositories/machine-learning.repository';
import { OcrService, toOcrBoxes } from 'src/services/ocr.service';
import { assetStub } from 'test/fixtures/asset.stub';
import { systemConfigStub } from 'test/fixtures/system-config.stub';
import { makeStream, newTestService, ServiceMocks } from 'test/utils';

const previewFile = assetStub.image.files[1];

const mlResult = (overrides: Partial<OCR> = {}): OCR => ({
  text: ['Hello', 'World'],
  box: [0.1, 0.2, 0.4, 0.2, 0.4, 0.3, 0.1, 0.3, 0.5, 0.6, 0.9, 0.6, 0.9, 0.7, 0.5, 0.7],
  boxScore: [0.95, 0.85],
  textScore: [0.99, 0.9],
  ...overrides,
});

describe(OcrService.name, () => {
  let sut: OcrService;
  let mocks: ServiceMocks;

  beforeEach(() => {
    ({ sut, mocks } = newTestService(OcrService));

    mocks.config.getWorker.mockReturnValue(ImmichWorker.Microservices);
    mocks.ocr.upsert.mockResolvedValue();
    mocks.ocr.deleteAll.mockResolvedValue();
    mocks.assetJob.getForOcr.mockResolvedValue({
      id: assetStub.image.id,
      visibility: AssetVisibility.Timeline,
      files: [previewFile],
    });
  });

  it('should work', () => {
    expect(sut).toBeDefined();
  });

  describe('handleQueueOcr', () => {
    it('should do nothing if machine learning is disabled', async () => {
      mocks.systemMetadata.get.mockResolvedValue(systemConfigStub.machineLearningDisabled);

      await expect(sut.handleQueueOcr({ force: false })).resolves.toBe(JobStatus.Skipped);

      expect(mocks.assetJob.streamForOcrJob).not.toHaveBeenCalled();
      expect(mocks.ocr.deleteAll).not.toHaveBeenCalled();
      expect(mocks.job.queueAll).not.toHaveBeenCalled();
    });

    it('should do nothing if OCR is disabled', async () => {
      mocks.systemMetadata.get.mockResolvedValue({ machineLearning: { ocr: { enabled: false } } });

      await expect(sut.handleQueueOcr({ force: true })).resolves.toBe(JobStatus.Skipped);

      expect(mocks.assetJob.streamForOcrJob).not.toHaveBeenCalled();
      expect(mocks.ocr.deleteAll).not.toHaveBeenCalled();
    });

    it('should queue the assets OCR has not read yet', async () => {
      mocks.assetJob.streamForOcrJob.mockReturnValue(makeStream([assetStub.image, assetStub.video]));

      await expect(sut.handleQueueOcr({ force: false })).resolves.toBe(JobStatus.Success);

      expect(mocks.assetJob.streamForOcrJob).toHaveBeenCalledWith(false);
      expect(mocks.ocr.deleteAll).not.toHaveBeenCalled();
      expect(mocks.job.queueAll).toHaveBeenCalledWith([
        { name: JobName.Ocr, data: { id: assetStub.image.id } },
        { name: JobName.Ocr, data: { id: assetStub.video.id } },
      ]);
    });

    it('should clear every result and queue all assets when forced', async () => {
      mocks.assetJob.streamForOcrJob.mockReturnValue(makeStream([assetStub.image]));

      await expect(sut.handleQueueOcr({ force: true })).resolves.toBe(JobStatus.Success);

      expect(mocks.ocr.deleteAll).toHaveBeenCalledTimes(1);
      expect(mocks.assetJob.streamForOcrJob).toHaveBeenCalledWith(true);
      expect(mocks.ocr.deleteAll.mock.invocationCallOrder[0]).toBeLessThan(
        mocks.assetJob.streamForOcrJob.mock.invocationCallOrder[0],
      );
      expect(mocks.job.queueAll).toHaveBeenCalledWith([{ name: JobName.Ocr, data: { id: assetStub.image.id } }]);
    });
  });

  describe('handleOcr', () => {
    it('should do nothing if machine learning is disabled', async () => {
      mocks.systemMetadata.get.mockResolvedValue(systemConfigStub.machineLearningDisabled);

      await expect(sut.handleOcr({ id: assetStub.image.id })).resolves.toBe(JobStatus.Skipped);

      expect(mocks.assetJob.getForOcr).not.toHaveBeenCalled();
      expect(mocks.machineLearning.ocr).not.toHaveBeenCalled();
      expect(mocks.ocr.upsert).not.toHaveBeenCalled();
    });

    it('should do nothing if OCR is disabled', async () => {
      mocks.systemMetadata.get.mockResolvedValue({ machineLearning: { ocr: { enabled: false } } });

      await expect(sut.handleOcr({ id: assetStub.image.id })).resolves.toBe(JobStatus.Skipped);

      expect(mocks.machineLearning.ocr).not.toHaveBeenCalled();
      expect(mocks.ocr.upsert).not.toHaveBeenCalled();
    });

    it('should fail if the asset could not be found', async () => {
      mocks.assetJob.getForOcr.mockResolvedValue(void 0);

      await expect(sut.handleOcr({ id: assetStub.image.id })).resolves.toBe(JobStatus.Failed);

      expect(mocks.machineLearning.ocr).not.toHaveBeenCalled();
      expect(mocks.ocr.upsert).not.toHaveBeenCalled();
    });

    it('should fail if the asset has no preview', async () => {
      mocks.assetJob.getForOcr.mockResolvedValue({
        id: assetStub.image.id,
        visibility: AssetVisibility.Timeline,
        files: [],
      });

      await expect(sut.handleOcr({ id: assetStub.image.id })).resolves.toBe(JobStatus.Failed);

      expect(mocks.machineLearning.ocr).not.toHaveBeenCalled();
      expect(mocks.ocr.upsert).not.toHaveBeenCalled();
    });

    it('should skip hidden assets', async () => {
      mocks.assetJob.getForOcr.mockResolvedValue({
        id: assetStub.livePhotoMotionAsset.id,
        visibility: AssetVisibility.Hidden,
        files: [previewFile],
      });

      await expect(sut.handleOcr({ id: assetStub.livePhotoMotionAsset.id })).resolves.toBe(JobStatus.Skipped);

      expect(mocks.machineLearning.ocr).not.toHaveBeenCalled();
      expect(mocks.ocr.upsert).not.toHaveBeenCalled();
    });

    it('should read the preview with the configured model and store the boxes', async () => {
      mocks.machineLearning.ocr.mockResolvedValue(mlResult());

      await expect(sut.handleOcr({ id: assetStub.image.id })).resolves.toBe(JobStatus.Success);

      expect(mocks.machineLearning.ocr).toHaveBeenCalledWith(
        previewFile.path,
        expect.objectContaining({
          enabled: true,
          modelName: 'PP-OCRv5_mobile',
          minDetectionScore: 0.5,
          minRecognitionScore: 0.8,
          maxResolution: 736,
        }),
      );
      expect(mocks.ocr.upsert).toHaveBeenCalledWith(assetStub.image.id, [
        {
          x1: 0.1,
          y1: 0.2,
          x2: 0.4,
          y2: 0.2,
          x3: 0.4,
          y3: 0.3,
          x4: 0.1,
          y4: 0.3,
          boxScore: 0.95,
          textScore: 0.99,
          text: 'Hello',
        },
        {
          x1: 0.5,
          y1: 0.6,
          x2: 0.9,
          y2: 0.6,
          x3: 0.9,
          y3: 0.7,
          x4: 0.5,
          y4: 0.7,
          boxScore: 0.85,
          textScore: 0.9,
          text: 'World',
        },
      ]);
    });

    it('should record an asset without text', async () => {
      mocks.machineLearning.ocr.mockResolvedValue(mlResult({ text: [], box: [], boxScore: [], textScore: [] }));

      await expect(sut.handleOcr({ id: assetStub.image.id })).resolves.toBe(JobStatus.Success);

      expect(mocks.ocr.upsert).toHaveBeenCalledWith(assetStub.image.id, []);
    });

    it('should fail cleanly and write nothing when the machine learning request fails', async () => {
      mocks.machineLearning.ocr.mockRejectedValue(new Error('Machine learning request failed for all URLs'));

      await expect(sut.handleOcr({ id: assetStub.image.id })).rejects.toThrow(
        'Machine learning request failed for all URLs',
      );

      expect(mocks.ocr.upsert).not.toHaveBeenCalled();
      expect(mocks.ocr.deleteAll).not.toHaveBeenCalled();
      expect(mocks.logger.error).toHaveBeenCalledWith(expect.stringContaining(`OCR of asset ${assetStub.image.id}`));
    });
  });

  describe('toOcrBoxes', () => {
    it('should keep corners within the image', () => {
      const [box] = toOcrBoxes(
        mlResult({ text: ['edge'], box: [-0.01, -0.2, 1.05, 0, 1.2, 1.1, 0, 1], boxScore: [0.7], textScore: [0.8] }),
      );

      expect(box).toEqual({
        x1: 0,
        y1: 0,
        x2: 1,
        y2: 0,
        x3: 1,
        y3: 1,
        x4: 0,
        y4: 1,
        boxScore: 0.7,
        textScore: 0.8,
        text: 'edge',
      });
    });

    it('should leave out boxes without text', () => {
      const boxes = toOcrBoxes(mlResult({ text: ['  ', 'World'] }));

      expect(boxes).toHaveLength(1);
      expect(boxes[0]).toMatchObject({ text: 'World', x1: 0.5, y1: 0.6, boxScore: 0.85, textScore: 0.9 });
    });
  });
});
