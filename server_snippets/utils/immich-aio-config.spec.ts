import {
  CHINESE_MODEL_KEY,
  chineseClipTextConversion,
  embeddingCacheKey,
  loadImmichAioClipModel,
  storeImmichAioClipModel,
  textEncodingOptions,
} from 'src/utils/immich-aio-config';
import { describe, expect, it } from 'vitest';

describe('immich-aio Chinese-CLIP settings', () => {
  it('should store a Chinese-CLIP model behind the upstream model of the same size', () => {
    const stored = storeImmichAioClipModel({ machineLearning: { clip: { modelName: 'ViT-B-16__cn-clip' } } });

    expect(stored).toEqual({
      machineLearning: { clip: { modelName: 'ViT-B-16__openai', [CHINESE_MODEL_KEY]: 'ViT-B-16__cn-clip' } },
    });
  });

  it('should read the Chinese-CLIP model back', () => {
    const stored = storeImmichAioClipModel({ machineLearning: { clip: { enabled: true, modelName: 'RN50__cn-clip' } } });

    expect(loadImmichAioClipModel(stored)).toEqual({
      machineLearning: { clip: { enabled: true, modelName: 'RN50__cn-clip' } },
    });
  });

  it('should keep a model a stock server chose in between', () => {
    const stored = {
      machineLearning: { clip: { modelName: 'ViT-L-14__openai', [CHINESE_MODEL_KEY]: 'ViT-B-16__cn-clip' } },
    };

    expect(loadImmichAioClipModel(stored)).toEqual({ machineLearning: { clip: { modelName: 'ViT-L-14__openai' } } });
  });

  it('should leave every other setting as it is', () => {
    const upstream = { machineLearning: { clip: { modelName: 'ViT-B-32__openai' } }, ffmpeg: { crf: 23 } };

    expect(storeImmichAioClipModel(upstream)).toBe(upstream);
    expect(loadImmichAioClipModel(upstream)).toBe(upstream);
    expect(storeImmichAioClipModel(null)).toBeNull();
    expect(loadImmichAioClipModel({})).toEqual({});
  });

  it('should send the script conversion to a Chinese-CLIP model only', () => {
    expect(chineseClipTextConversion({ modelName: 'ViT-B-16__cn-clip', textConversion: 'tw2sp' })).toBe('tw2sp');
    expect(chineseClipTextConversion({ modelName: 'ViT-B-16__cn-clip', textConversion: 'off' })).toBe('off');
    expect(chineseClipTextConversion({ modelName: 'QA-CLIP-ViT-B-16', textConversion: 't2s' })).toBe('t2s');
    expect(chineseClipTextConversion({ modelName: 'ViT-B-32__openai', textConversion: 't2s' })).toBeUndefined();
  });

  it('should encode a query with the Chinese-CLIP conversion only for a Chinese-CLIP model', () => {
    expect(textEncodingOptions({ modelName: 'ViT-B-16__cn-clip', textConversion: 'hk2s' }, 'zh-TW')).toEqual({
      modelName: 'ViT-B-16__cn-clip',
      language: 'zh-TW',
      textConversion: 'hk2s',
    });
    expect(textEncodingOptions({ modelName: 'ViT-B-32__openai', textConversion: 't2s' })).toEqual({
      modelName: 'ViT-B-32__openai',
    });
  });

  it('should cache a query under its model, language and conversion', () => {
    const cn = textEncodingOptions({ modelName: 'ViT-B-16__cn-clip', textConversion: 't2s' }, 'zh');
    const off = textEncodingOptions({ modelName: 'ViT-B-16__cn-clip', textConversion: 'off' }, 'zh');
    const stock = textEncodingOptions({ modelName: 'ViT-B-32__openai', textConversion: 't2s' }, 'en');

    expect(embeddingCacheKey('貓', cn)).not.toBe(embeddingCacheKey('貓', off));
    expect(embeddingCacheKey('cat', stock)).toBe('ViT-B-32__openai' + 'cat' + 'en');
  });
});
