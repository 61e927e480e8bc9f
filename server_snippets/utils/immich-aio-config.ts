// immich-aio: its CLIP settings on the server, read by the patched upstream code: how a Chinese-CLIP choice is
// stored so that a stock Immich can open the same database again, and what a smart-search query is encoded with.
// A stock server's microservices worker stops at start ("Unknown CLIP model") when the stored settings
// name a model it does not know. So the stored settings name the upstream model of the same embedding
// size (the smart_search vectors keep their column), and the Chinese-CLIP name rides along in a key that
// stock Immich ignores; the patched server reads it back. When a stock server saves the settings, that
// key is dropped and whatever was chosen there stays chosen.

/** Chinese-CLIP (and QA-CLIP) model -> the upstream model of the same embedding size that stands in for it. */
export const CHINESE_CLIP_STAND_INS: Readonly<Record<string, string>> = {
  'RN50__cn-clip': 'RN50__openai',
  'ViT-B-16__cn-clip': 'ViT-B-16__openai',
  'ViT-L-14__cn-clip': 'ViT-L-14__openai',
  'ViT-L-14-336__cn-clip': 'ViT-L-14-336__openai',
  'ViT-H-14__cn-clip': 'ViT-H-14__laion2b-s32b-b79k',
  'QA-CLIP-ViT-B-16': 'ViT-B-16__openai',
};

/** Where the stored settings keep the Chinese-CLIP name behind its stand-in. */
export const CHINESE_MODEL_KEY = 'chineseModelName';

type Section = Record<string, unknown>;

const clipSection = (stored: unknown): Section | undefined => {
  const machineLearning = (stored as { machineLearning?: unknown } | null | undefined)?.machineLearning;
  const clip = (machineLearning as { clip?: unknown } | null | undefined)?.clip;
  return clip && typeof clip === 'object' ? (clip as Section) : undefined;
};

const withClip = <T>(stored: T, clip: Section): T => {
  const config = stored as { machineLearning: Section };
  return { ...config, machineLearning: { ...config.machineLearning, clip } } as T;
};

/** The settings as they are stored: a Chinese-CLIP model is replaced by its stand-in. */
export const storeImmichAioClipModel = <T>(settings: T): T => {
  const clip = clipSection(settings);
  const modelName = clip?.modelName;
  const standIn = typeof modelName === 'string' ? CHINESE_CLIP_STAND_INS[modelName] : undefined;
  if (!clip || !standIn) {
    return settings;
  }
  return withClip(settings, { ...clip, modelName: standIn, [CHINESE_MODEL_KEY]: modelName });
};

/** The stored settings as the patched server uses them: the Chinese-CLIP model back in place of its stand-in. */
export const loadImmichAioClipModel = <T>(stored: T): T => {
  const clip = clipSection(stored);
  if (!clip || !(CHINESE_MODEL_KEY in clip)) {
    return stored;
  }
  const { [CHINESE_MODEL_KEY]: chinese, ...rest } = clip;
  const unchanged = typeof chinese === 'string' && CHINESE_CLIP_STAND_INS[chinese] === rest.modelName;
  return withClip(stored, unchanged ? { ...rest, modelName: chinese } : rest);
};

/**
 * The script conversion a smart-search query carries to the ML server, when the model is a Chinese-CLIP one.
 * Only immich-aio's ML serves Chinese-CLIP and reads the option; Immich's own ML fails a request whose options
 * it does not know, so any other model gets none (and reads the query as typed).
 */
export const chineseClipTextConversion = (clip: { modelName: string; textConversion?: string }): string | undefined =>
  clip.modelName in CHINESE_CLIP_STAND_INS ? clip.textConversion : undefined;

/** The options a smart-search query is encoded with: the model, the query's language and immich-aio's own. */
export type TextEncodingOptions = { modelName: string; language?: string; textConversion?: string };

/**
 * What smart search sends the ML server with a query. The patched search service and ML repository pass these
 * through as they are, so a new CLIP setting that reaches the ML server is written here, not in upstream files.
 */
export const textEncodingOptions = (
  clip: { modelName: string; textConversion?: string },
  language?: string,
): TextEncodingOptions => ({ modelName: clip.modelName, language, textConversion: chineseClipTextConversion(clip) });

/** The embedding cache's key of a query: the same text under other options is another embedding. */
export const embeddingCacheKey = (query: string | undefined, options: TextEncodingOptions): string =>
  options.modelName + query + options.language + (options.textConversion ?? '');
