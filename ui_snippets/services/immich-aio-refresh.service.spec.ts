import { AssetJobName, runAssetJobs } from '@immich/sdk';
import { toastManager } from '@immich/ui';
import { featureFlagsManager } from '$lib/managers/feature-flags-manager.svelte';
import { getRefreshSearchActions, queueRefreshSearch } from '$lib/services/immich-aio-refresh.service';
import { handleError } from '$lib/utils/handle-error';

vi.mock('@immich/sdk', async (importOriginal) => ({
  ...(await importOriginal<typeof import('@immich/sdk')>()),
  runAssetJobs: vi.fn(),
}));

vi.mock('@immich/ui', () => ({ toastManager: { primary: vi.fn() } }));

vi.mock('$lib/utils/handle-error', () => ({ handleError: vi.fn() }));

vi.mock(import('$lib/managers/feature-flags-manager.svelte'), () => ({
  featureFlagsManager: { init: vi.fn(), loadFeatureFlags: vi.fn(), value: { ocr: true, smartSearch: true } } as never,
}));

const $t = vi.fn((key: string) => `t:${key}`) as never;

describe('immich-aio refresh actions', () => {
  beforeEach(() => {
    vi.clearAllMocks();
    Object.assign(featureFlagsManager.value, { ocr: true, smartSearch: true });
  });

  it('should queue OCR for the given assets and say so', async () => {
    await queueRefreshSearch($t, AssetJobName.RefreshOcr, ['a', 'b']);

    expect(runAssetJobs).toHaveBeenCalledWith({ assetJobsDto: { name: 'refresh-ocr', assetIds: ['a', 'b'] } });
    expect(toastManager.primary).toHaveBeenCalledWith('t:refreshing_ocr');
  });

  it('should queue nothing for an empty selection', async () => {
    await queueRefreshSearch($t, AssetJobName.RefreshSmartSearch, []);

    expect(runAssetJobs).not.toHaveBeenCalled();
    expect(toastManager.primary).not.toHaveBeenCalled();
  });

  it('should report a failed request instead of a success toast', async () => {
    const failure = new Error('forbidden');
    vi.mocked(runAssetJobs).mockRejectedValueOnce(failure);

    await queueRefreshSearch($t, AssetJobName.RefreshSmartSearch, ['a']);

    expect(toastManager.primary).not.toHaveBeenCalled();
    expect(handleError).toHaveBeenCalledWith(failure, 't:errors.unable_to_submit_job');
  });

  it('should run the smart-search job for the current selection, then clear it', async () => {
    const afterQueue = vi.fn();
    const { RefreshSmartSearchJob } = getRefreshSearchActions($t, () => ['x', 'y'], afterQueue);

    await RefreshSmartSearchJob.onAction(RefreshSmartSearchJob);

    expect(RefreshSmartSearchJob.title).toBe('t:refresh_smart_search');
    expect(runAssetJobs).toHaveBeenCalledWith({
      assetJobsDto: { name: 'refresh-smart-search', assetIds: ['x', 'y'] },
    });
    expect(toastManager.primary).toHaveBeenCalledWith('t:refreshing_smart_search');
    expect(afterQueue).toHaveBeenCalledOnce();
  });

  it('should offer each action only while its feature is enabled', () => {
    const { RefreshOcrJob, RefreshSmartSearchJob } = getRefreshSearchActions($t, () => []);
    expect(RefreshOcrJob.$if?.()).toBe(true);
    expect(RefreshSmartSearchJob.$if?.()).toBe(true);

    Object.assign(featureFlagsManager.value, { ocr: false, smartSearch: false });

    expect(RefreshOcrJob.$if?.()).toBe(false);
    expect(RefreshSmartSearchJob.$if?.()).toBe(false);
  });
});
