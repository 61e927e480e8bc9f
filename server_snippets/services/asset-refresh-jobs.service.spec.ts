import { BadRequestException } from '@nestjs/common';
import { AssetJobName } from 'src/dtos/asset.dto';
import { JobName } from 'src/enum';
import { AssetService } from 'src/services/asset.service';
import { authStub } from 'test/fixtures/auth.stub';
import { newTestService, ServiceMocks } from 'test/utils';

describe('AssetService (immich-aio refresh jobs)', () => {
  let sut: AssetService;
  let mocks: ServiceMocks;

  beforeEach(() => {
    ({ sut, mocks } = newTestService(AssetService));
  });

  it('should queue OCR for one asset', async () => {
    mocks.access.asset.checkOwnerAccess.mockResolvedValue(new Set(['asset-1']));

    await sut.run(authStub.admin, { assetIds: ['asset-1'], name: AssetJobName.REFRESH_OCR });

    expect(mocks.job.queueAll).toHaveBeenCalledWith([{ name: JobName.Ocr, data: { id: 'asset-1' } }]);
  });

  it('should queue smart search for exactly the selected assets', async () => {
    mocks.access.asset.checkOwnerAccess.mockResolvedValue(new Set(['asset-1', 'asset-2', 'asset-3']));

    await sut.run(authStub.admin, {
      assetIds: ['asset-1', 'asset-2', 'asset-3'],
      name: AssetJobName.REFRESH_SMART_SEARCH,
    });

    expect(mocks.job.queueAll).toHaveBeenCalledWith([
      { name: JobName.SmartSearch, data: { id: 'asset-1' } },
      { name: JobName.SmartSearch, data: { id: 'asset-2' } },
      { name: JobName.SmartSearch, data: { id: 'asset-3' } },
    ]);
  });

  it('should queue nothing when the user may not update one of the assets', async () => {
    mocks.access.asset.checkOwnerAccess.mockResolvedValue(new Set(['asset-1']));

    await expect(
      sut.run(authStub.admin, { assetIds: ['asset-1', 'asset-2'], name: AssetJobName.REFRESH_OCR }),
    ).rejects.toBeInstanceOf(BadRequestException);

    expect(mocks.job.queueAll).not.toHaveBeenCalled();
  });

  it('should check update permission like the other asset jobs', async () => {
    mocks.access.asset.checkOwnerAccess.mockResolvedValue(new Set());

    await expect(
      sut.run(authStub.user1, { assetIds: ['asset-1'], name: AssetJobName.REFRESH_SMART_SEARCH }),
    ).rejects.toBeInstanceOf(BadRequestException);

    expect(mocks.access.asset.checkOwnerAccess.mock.calls[0].slice(0, 2)).toEqual([
      authStub.user1.user.id,
      new Set(['asset-1']),
    ]);
    expect(mocks.job.queueAll).not.toHaveBeenCalled();
  });
});
