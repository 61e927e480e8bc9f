/** The OCR model the server uses unless configured otherwise */
export const defaultOcrModel = 'PP-OCRv5_mobile';

/** OCR models offered in the machine learning settings, the default first */
export const ocrModels = [defaultOcrModel, 'PP-OCRv5_server', 'PP-OCRv4_mobile'];

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
