import { Injectable } from '@nestjs/common';
import { JOBS_ASSET_PAGINATION_SIZE } from 'src/constants';
import { OnJob } from 'src/decorators';
import { AssetVisibility, JobName, JobStatus, QueueName } from 'src/enum';
import { OCR } from 'src/repositories/machine-learning.repository';
import { OcrBox } from 'src/repositories/ocr.repository';
import { BaseService } from 'src/services/base.service';
import { JobItem, JobOf } from 'src/types';
import { isOcrEnabled } from 'src/utils/misc';

/** the ML server sends every box as its four corners, x and y each: 8 numbers per box */
const COORDINATES_PER_BOX = 8;

const toUnit = (value: number) => Math.min(1, Math.max(0, value));

/** turns the parallel arrays of the ML answer into one row per text box; boxes without text are left out */
export const toOcrBoxes = ({ text, box, boxScore, textScore }: OCR): OcrBox[] => {
  const boxes: OcrBox[] = [];
  for (const [index, value] of text.entries()) {
    if (value.trim().length === 0) {
      continue;
    }

    const [x1, y1, x2, y2, x3, y3, x4, y4] = box
      .slice(index * COORDINATES_PER_BOX, (index + 1) * COORDINATES_PER_BOX)
      .map((coordinate) => toUnit(coordinate));

    boxes.push({ x1, y1, x2, y2, x3, y3, x4, y4, boxScore: boxScore[index], textScore: textScore[index], text: value });
  }

  return boxes;
};

/**
 * immich-aio: reads the text in photos (OCR) with the machine learning server, for Immich releases that have no OCR
 * of their own. The results go to schema immich_aio_ocr (see OcrRepository).
 */
@Injectable()
export class OcrService extends BaseService {
  @OnJob({ name: JobName.OcrQueueAll, queue: QueueName.Ocr })
  async handleQueueOcr({ force }: JobOf<JobName.OcrQueueAll>): Promise<JobStatus> {
    const { machineLearning } = await this.getConfig({ withCache: false });
    if (!isOcrEnabled(machineLearning)) {
      return JobStatus.Skipped;
    }

    if (force) {
      await this.ocrRepository.deleteAll();
    }

    let queue: JobItem[] = [];
    for await (const asset of this.assetJobRepository.streamForOcrJob(force)) {
      queue.push({ name: JobName.Ocr, data: { id: asset.id } });
      if (queue.length >= JOBS_ASSET_PAGINATION_SIZE) {
        await this.jobRepository.queueAll(queue);
        queue = [];
      }
    }

    await this.jobRepository.queueAll(queue);

    return JobStatus.Success;
  }

  @OnJob({ name: JobName.Ocr, queue: QueueName.Ocr })
  async handleOcr({ id }: JobOf<JobName.Ocr>): Promise<JobStatus> {
    const { machineLearning } = await this.getConfig({ withCache: true });
    if (!isOcrEnabled(machineLearning)) {
      return JobStatus.Skipped;
    }

    const asset = await this.assetJobRepository.getForOcr(id);
    if (!asset || asset.files.length !== 1) {
      return JobStatus.Failed;
    }

    if (asset.visibility === AssetVisibility.Hidden) {
      return JobStatus.Skipped;
    }

    let result: OCR;
    try {
      result = await this.machineLearningRepository.ocr(asset.files[0].path, machineLearning.ocr);
    } catch (error: Error | any) {
      // nothing is written: whatever was stored for the asset before stays, and a later run can try again
      this.logger.error(`OCR of asset ${id} failed: ${error?.message ?? error}`);
      throw error;
    }

    const boxes = toOcrBoxes(result);
    await this.ocrRepository.upsert(asset.id, boxes);
    this.logger.debug(`OCR found ${boxes.length} text box(es) in asset ${id}`);

    return JobStatus.Success;
  }
}
