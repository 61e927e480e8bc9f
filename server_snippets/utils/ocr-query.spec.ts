import { parseSmartQuery } from 'src/utils/ocr-query';
import { describe, expect, it } from 'vitest';

describe('parseSmartQuery', () => {
  it('should read an ocr: prefix', () => {
    expect(parseSmartQuery('ocr:发票')).toEqual({ kind: 'ocr', text: '发票' });
  });

  it('should accept a full-width colon', () => {
    expect(parseSmartQuery('ocr：发票')).toEqual({ kind: 'ocr', text: '发票' });
  });

  it('should ignore the case of the prefix', () => {
    expect(parseSmartQuery('OCR:Invoice 2024')).toEqual({ kind: 'ocr', text: 'Invoice 2024' });
    expect(parseSmartQuery('Ocr：收据')).toEqual({ kind: 'ocr', text: '收据' });
  });

  it('should trim spaces around the prefix and the text', () => {
    expect(parseSmartQuery('  ocr :  火车票  ')).toEqual({ kind: 'ocr', text: '火车票' });
    expect(parseSmartQuery('\u3000ocr：\u3000发票\u3000')).toEqual({ kind: 'ocr', text: '发票' });
  });

  it('should keep the inner text as typed', () => {
    expect(parseSmartQuery('ocr:a:b ocr:c')).toEqual({ kind: 'ocr', text: 'a:b ocr:c' });
  });

  it('should give empty text for a bare prefix', () => {
    expect(parseSmartQuery('ocr:')).toEqual({ kind: 'ocr', text: '' });
    expect(parseSmartQuery(' OCR：   ')).toEqual({ kind: 'ocr', text: '' });
  });

  it('should leave queries that merely contain ocr: later on alone', () => {
    expect(parseSmartQuery('receipt ocr:发票')).toEqual({ kind: 'clip', text: 'receipt ocr:发票' });
    expect(parseSmartQuery('my ocr: notes')).toEqual({ kind: 'clip', text: 'my ocr: notes' });
  });

  it('should not treat words that start with ocr as the prefix', () => {
    expect(parseSmartQuery('ocra: a knitted hat')).toEqual({ kind: 'clip', text: 'ocra: a knitted hat' });
    expect(parseSmartQuery('ocr 发票')).toEqual({ kind: 'clip', text: 'ocr 发票' });
  });

  it('should keep ordinary queries unchanged', () => {
    expect(parseSmartQuery('sunset at the beach')).toEqual({ kind: 'clip', text: 'sunset at the beach' });
    expect(parseSmartQuery('')).toEqual({ kind: 'clip', text: '' });
  });
});
