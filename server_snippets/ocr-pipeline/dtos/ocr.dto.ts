import { ApiProperty } from '@nestjs/swagger';

const corner = (axis: 'x' | 'y', index: number) => ({
  type: 'number' as const,
  format: 'double',
  description: `${axis.toUpperCase()} of corner ${index} of the text box, as a fraction (0-1) of the image ${axis === 'x' ? 'width' : 'height'}`,
});

/** one text box that OCR found in an asset */
export class AssetOcrResponseDto {
  @ApiProperty({ type: 'string', format: 'uuid' })
  id!: string;

  @ApiProperty({ type: 'string', format: 'uuid' })
  assetId!: string;

  @ApiProperty(corner('x', 1))
  x1!: number;

  @ApiProperty(corner('y', 1))
  y1!: number;

  @ApiProperty(corner('x', 2))
  x2!: number;

  @ApiProperty(corner('y', 2))
  y2!: number;

  @ApiProperty(corner('x', 3))
  x3!: number;

  @ApiProperty(corner('y', 3))
  y3!: number;

  @ApiProperty(corner('x', 4))
  x4!: number;

  @ApiProperty(corner('y', 4))
  y4!: number;

  @ApiProperty({ type: 'number', format: 'double', description: 'How sure the detector is that this box holds text' })
  boxScore!: number;

  @ApiProperty({ type: 'number', format: 'double', description: 'How sure the recogniser is of the text' })
  textScore!: number;

  @ApiProperty({ type: 'string', description: 'The text read in the box' })
  text!: string;
}
