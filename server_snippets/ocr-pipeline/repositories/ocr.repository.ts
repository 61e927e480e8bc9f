import { Injectable } from '@nestjs/common';
import { Insertable, Kysely, sql } from 'kysely';
import { InjectKysely } from 'nestjs-kysely';
import { DummyValue, GenerateSql } from 'src/decorators';
import { DB, ImmichAioAssetOcr } from 'src/schema';

/** one recognised text box of an asset, as the OCR job stores it (corners normalised to 0..1) */
export type OcrBox = Omit<Insertable<ImmichAioAssetOcr>, 'id' | 'assetId'>;

/**
 * immich-aio: reads and writes the OCR results kept in schema immich_aio_ocr (see ImmichAioAssetOcr in src/schema).
 * The rows follow the asset: both tables cascade on delete, so nothing here needs to clean up after an asset.
 */
@Injectable()
export class OcrRepository {
  constructor(@InjectKysely() private db: Kysely<DB>) {}

  @GenerateSql({ params: [DummyValue.UUID] })
  getByAssetId(assetId: string) {
    return this.db
      .selectFrom('immich_aio_ocr.asset_ocr')
      .select([
        'immich_aio_ocr.asset_ocr.id',
        'immich_aio_ocr.asset_ocr.assetId',
        'immich_aio_ocr.asset_ocr.x1',
        'immich_aio_ocr.asset_ocr.y1',
        'immich_aio_ocr.asset_ocr.x2',
        'immich_aio_ocr.asset_ocr.y2',
        'immich_aio_ocr.asset_ocr.x3',
        'immich_aio_ocr.asset_ocr.y3',
        'immich_aio_ocr.asset_ocr.x4',
        'immich_aio_ocr.asset_ocr.y4',
        'immich_aio_ocr.asset_ocr.boxScore',
        'immich_aio_ocr.asset_ocr.textScore',
        'immich_aio_ocr.asset_ocr.text',
      ])
      .where('immich_aio_ocr.asset_ocr.assetId', '=', assetId)
      .orderBy('immich_aio_ocr.asset_ocr.y1')
      .orderBy('immich_aio_ocr.asset_ocr.x1')
      .execute();
  }

  /**
   * Replaces everything stored for the asset by `boxes` (possibly none) and marks the asset as read, all or
   * nothing: a failure leaves the previous result in place.
   */
  @GenerateSql({
    params: [
      DummyValue.UUID,
      [
        {
          x1: DummyValue.NUMBER,
          y1: DummyValue.NUMBER,
          x2: DummyValue.NUMBER,
          y2: DummyValue.NUMBER,
          x3: DummyValue.NUMBER,
          y3: DummyValue.NUMBER,
          x4: DummyValue.NUMBER,
          y4: DummyValue.NUMBER,
          boxScore: DummyValue.NUMBER,
          textScore: DummyValue.NUMBER,
          text: DummyValue.STRING,
        },
      ],
    ],
  })
  async upsert(assetId: string, boxes: OcrBox[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('immich_aio_ocr.asset_ocr').where('assetId', '=', assetId).execute();

      if (boxes.length > 0) {
        await trx
          .insertInto('immich_aio_ocr.asset_ocr')
          .values(boxes.map((box) => ({ ...box, assetId })))
          .execute();
      }

      await trx
        .insertInto('immich_aio_ocr.asset_ocr_job')
        .values({ assetId, ocrAt: sql<Date>`now()` })
        .onConflict((oc) => oc.column('assetId').doUpdateSet({ ocrAt: sql<Date>`now()` }))
        .execute();
    });
  }

  /** forgets every result and every run, before all assets are read again */
  async deleteAll(): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await sql`truncate ${sql.table('immich_aio_ocr.asset_ocr')}`.execute(trx);
      await sql`truncate ${sql.table('immich_aio_ocr.asset_ocr_job')}`.execute(trx);
    });
  }
}
