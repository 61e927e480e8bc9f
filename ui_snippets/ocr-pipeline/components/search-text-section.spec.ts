import SearchTextSection from '$lib/components/shared-components/search-bar/search-text-section.svelte';
import { featureFlags } from '$lib/stores/server-config.store';
import '@testing-library/jest-dom';
import { render, screen } from '@testing-library/svelte';
import { get } from 'svelte/store';

describe('SearchTextSection component', () => {
  const initialFlags = get(featureFlags);

  afterEach(() => {
    featureFlags.set(initialFlags);
  });

  it('offers OCR as a search type when the server has OCR enabled', () => {
    featureFlags.set({ ...initialFlags, loaded: true, ocr: true });
    render(SearchTextSection, { query: '' });
    expect(screen.getByRole('radio', { name: 'ocr' })).toBeInTheDocument();
    expect(screen.getAllByRole('radio')).toHaveLength(4);
  });

  it('does not offer OCR when the server has OCR disabled', () => {
    featureFlags.set({ ...initialFlags, loaded: true, ocr: false });
    render(SearchTextSection, { query: '' });
    expect(screen.queryByRole('radio', { name: 'ocr' })).not.toBeInTheDocument();
    expect(screen.getAllByRole('radio')).toHaveLength(3);
  });

  it('shows the OCR text input for the OCR search type', () => {
    featureFlags.set({ ...initialFlags, loaded: true, ocr: true });
    render(SearchTextSection, { query: 'latte', queryType: 'ocr' });
    expect(screen.getByRole('radio', { name: 'ocr' })).toBeChecked();
    const input = screen.getByLabelText('search_by_ocr');
    expect(input).toHaveAttribute('name', 'ocr');
    expect(input).toHaveValue('latte');
  });
});
