// immich-aio: "Refresh OCR" and "Refresh smart search" actions, for the asset being viewed or for the
// assets of a multi-selection. They queue Immich's own OCR and smart-search jobs through the
// asset-jobs endpoint, which checks the same permissions as for the other asset jobs.
import { AssetJobName, runAssetJobs } from '@immich/sdk';
import { toastManager, type ActionItem } from '@immich/ui';
import { mdiCardSearchOutline, mdiTextRecognition } from '@mdi/js';
import type { MessageFormatter } from 'svelte-i18n';
import { featureFlagsManager } from '$lib/managers/feature-flags-manager.svelte';
import { handleError } from '$lib/utils/handle-error';

export type RefreshSearchJob = AssetJobName.RefreshOcr | AssetJobName.RefreshSmartSearch;

/** The toast shown once a refresh has been queued. */
export const getRefreshSearchMessage = ($t: MessageFormatter, name: RefreshSearchJob) =>
  name === AssetJobName.RefreshOcr ? $t('refreshing_ocr') : $t('refreshing_smart_search');

/** Queues `name` for `assetIds` and tells the user; an empty selection queues nothing. */
export const queueRefreshSearch = async ($t: MessageFormatter, name: RefreshSearchJob, assetIds: string[]) => {
  if (assetIds.length === 0) {
    return;
  }

  try {
    await runAssetJobs({ assetJobsDto: { name, assetIds } });
    toastManager.primary(getRefreshSearchMessage($t, name));
  } catch (error) {
    handleError(error, $t('errors.unable_to_submit_job'));
  }
};

/**
 * Menu actions that refresh the OCR text or the smart-search embedding of `getAssetIds()`; each is
 * offered only while the server has that feature turned on. `afterQueue` runs once a job was sent
 * (the multi-select menus clear the selection there, as upstream's refresh actions do).
 */
export const getRefreshSearchActions = (
  $t: MessageFormatter,
  getAssetIds: () => string[],
  afterQueue?: () => void,
) => {
  const run = async (name: RefreshSearchJob) => {
    await queueRefreshSearch($t, name, getAssetIds());
    afterQueue?.();
  };

  const RefreshOcrJob: ActionItem = {
    title: $t('refresh_ocr'),
    icon: mdiTextRecognition,
    $if: () => featureFlagsManager.value.ocr,
    onAction: () => run(AssetJobName.RefreshOcr),
  };

  const RefreshSmartSearchJob: ActionItem = {
    title: $t('refresh_smart_search'),
    icon: mdiCardSearchOutline,
    $if: () => featureFlagsManager.value.smartSearch,
    onAction: () => run(AssetJobName.RefreshSmartSearch),
  };

  return { RefreshOcrJob, RefreshSmartSearchJob };
};
