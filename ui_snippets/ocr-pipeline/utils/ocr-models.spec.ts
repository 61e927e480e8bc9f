import { defaultOcrModel, getOcrModelOptions, ocrModels } from '$lib/utils/ocr-models';

describe('getOcrModelOptions', () => {
  it('lists the known models with the default first', () => {
    expect(ocrModels[0]).toBe('PP-OCRv5_mobile');
    expect(defaultOcrModel).toBe('PP-OCRv5_mobile');
    expect(getOcrModelOptions().map(({ value }) => value)).toEqual(ocrModels);
  });

  it('offers the PP-OCRv6 tiers of Immich v3.3', () => {
    expect(ocrModels).toEqual(expect.arrayContaining(['PP-OCRv6_tiny', 'PP-OCRv6_small', 'PP-OCRv6_medium']));
  });

  it('uses the model name as the option text', () => {
    for (const option of getOcrModelOptions()) {
      expect(option.text).toBe(option.value);
    }
  });

  it('does not repeat configured models that are already known', () => {
    expect(getOcrModelOptions('PP-OCRv5_server', 'PP-OCRv5_mobile')).toHaveLength(ocrModels.length);
  });

  it('keeps custom configured models as extra options', () => {
    const options = getOcrModelOptions('my-ocr', undefined, '', 'my-ocr', 'other-ocr');
    expect(options.map(({ value }) => value)).toEqual([...ocrModels, 'my-ocr', 'other-ocr']);
  });
});
