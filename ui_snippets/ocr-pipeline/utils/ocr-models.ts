/** The OCR model the server uses unless configured otherwise */
export const defaultOcrModel = 'PP-OCRv5_mobile';

/**
 * OCR models offered in the machine learning settings, the default first: the names Immich's own ML server knows,
 * then the PP-OCRv6 tiers of Immich v3.3 (immich-aio's ML service reads tiny and small, and answers medium with the
 * nearest tier it has). A test keeps this list equal to the ML service's model catalog.
 */
export const ocrModels = [
  defaultOcrModel,
  'PP-OCRv5_server',
  'PP-OCRv4_mobile',
  'PP-OCRv6_tiny',
  'PP-OCRv6_small',
  'PP-OCRv6_medium',
];

/**
 * Options for the OCR model select. Model names that are not in the list (set through the API or a config file) are
 * kept as extra options, so that the select never shows an empty value or silently replaces them.
 */
export const getOcrModelOptions = (...configured: Array<string | undefined>) => {
  const names = [...ocrModels];
  for (const name of configured) {
    if (name && !names.includes(name)) {
      names.push(name);
    }
  }
  return names.map((name) => ({ value: name, text: name }));
};
