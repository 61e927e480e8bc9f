import { readFile } from 'node:fs/promises';
import { defaults } from 'src/config';
import { LoggingRepository } from 'src/repositories/logging.repository';
import { MachineLearningRepository } from 'src/repositories/machine-learning.repository';
import { Mock } from 'vitest';

vi.mock('node:fs/promises', () => ({ readFile: vi.fn() }));

const ocrOptions = {
  modelName: 'PP-OCRv5_mobile',
  minDetectionScore: 0.5,
  minRecognitionScore: 0.8,
  maxResolution: 736,
};

const ocrAnswer = {
  imageHeight: 100,
  imageWidth: 200,
  ocr: {
    text: ['Hello'],
    box: [0.1, 0.2, 0.4, 0.2, 0.4, 0.3, 0.1, 0.3],
    boxScore: [0.9],
    textScore: [0.95],
  },
};

const respond = (status: number, body: unknown) =>
  ({
    ok: status >= 200 && status < 300,
    status,
    statusText: `status ${status}`,
    json: () => Promise.resolve(body),
  }) as Response;

describe(MachineLearningRepository.name, () => {
  let sut: MachineLearningRepository;
  let fetchMock: Mock;

  beforeEach(() => {
    const logger = { setContext: vi.fn(), log: vi.fn(), warn: vi.fn(), error: vi.fn() };
    sut = new MachineLearningRepository(logger as unknown as LoggingRepository);
    sut.setup({
      ...defaults.machineLearning,
      urls: ['http://ml-1:3003', 'http://ml-2:3003'],
      availabilityChecks: { enabled: false, timeout: 2000, interval: 30_000 },
    });

    vi.mocked(readFile).mockResolvedValue(Buffer.from('preview') as any);
    fetchMock = vi.fn();
    vi.stubGlobal('fetch', fetchMock);
  });

  afterEach(() => {
    sut.teardown();
    vi.unstubAllGlobals();
  });

  describe('ocr', () => {
    it('should send the OCR task and return its result', async () => {
      fetchMock.mockResolvedValue(respond(200, ocrAnswer));

      await expect(sut.ocr('/path/to/preview.jpeg', ocrOptions)).resolves.toEqual(ocrAnswer.ocr);

      expect(readFile).toHaveBeenCalledWith('/path/to/preview.jpeg');
      expect(fetchMock).toHaveBeenCalledTimes(1);
      const [url, init] = fetchMock.mock.calls[0];
      expect(String(url)).toBe('http://ml-1:3003/predict');
      const body = init.body as FormData;
      expect(JSON.parse(body.get('entries') as string)).toEqual({
        ocr: {
          detection: { modelName: 'PP-OCRv5_mobile', options: { minScore: 0.5, maxResolution: 736 } },
          recognition: { modelName: 'PP-OCRv5_mobile', options: { minScore: 0.8 } },
        },
      });
      expect(body.get('image')).toBeInstanceOf(Blob);
    });

    it('should fail when every server rejects the task', async () => {
      fetchMock.mockResolvedValue(respond(422, { detail: 'unknown task' }));

      await expect(sut.ocr('/path/to/preview.jpeg', ocrOptions)).rejects.toThrow('failed for all URLs');
      expect(fetchMock).toHaveBeenCalledTimes(2);
    });

    it('should fail when the answer has no OCR result', async () => {
      fetchMock.mockResolvedValue(respond(200, { imageHeight: 100, imageWidth: 200 }));

      await expect(sut.ocr('/path/to/preview.jpeg', ocrOptions)).rejects.toThrow('returned no OCR result');
    });

    it('should fail when the arrays of the answer do not match', async () => {
      fetchMock.mockResolvedValue(respond(200, { ...ocrAnswer, ocr: { ...ocrAnswer.ocr, box: [0.1, 0.2] } }));

      await expect(sut.ocr('/path/to/preview.jpeg', ocrOptions)).rejects.toThrow('malformed OCR result');
    });
  });
});
