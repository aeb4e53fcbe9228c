// Parquet I/O glue over hyparquet-writer and hyparquet: an incremental file writer that appends
// one row group at a time with asynchronous writes (hyparquet-writer's own file writer is
// synchronous), a whole-table writer for the small meta files, and a reader of row ranges.

import { open, type FileHandle } from 'node:fs/promises';
import type { ColumnSource, SchemaElement as WriterSchemaElement } from 'hyparquet-writer';
import { ByteWriter, ParquetWriter, parquetWriteBuffer } from 'hyparquet-writer';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, type FileMetaData, type SchemaElement } from 'hyparquet';
import { StagewardError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/files.ts';

/** A hyparquet-writer Writer whose flushes go to a file handle asynchronously, in order. */
class AsyncFileWriter extends ByteWriter {
  private pending: Promise<unknown> = Promise.resolve();

  constructor(private readonly fh: FileHandle) {
    super(1 << 20);
  }

  flush(): Promise<void> {
    const chunk = Buffer.from(this.buffer.slice(0, this.index));
    this.index = 0;
    this.pending = this.pending.then(() => this.fh.write(chunk));
    return this.pending.then(() => undefined);
  }

  override finish(): Promise<void> {
    return this.flush().then(() => this.fh.close());
  }

  close(): Promise<void> {
    return this.pending.catch(() => {}).then(() => this.fh.close().catch(() => {}));
  }
}

/** A parquet file written one row group per call to `append`. */
export class IncrementalParquetFile {
  private rows = 0;

  private constructor(
    private readonly writer: ParquetWriter,
    private readonly out: AsyncFileWriter,
  ) {}

  static async create(path: string, schema: WriterSchemaElement[]): Promise<IncrementalParquetFile> {
    const out = new AsyncFileWriter(await open(path, 'w'));
    return new IncrementalParquetFile(new ParquetWriter({ writer: out, schema, createdBy: 'stageward' }), out);
  }

  get rowCount(): number {
    return this.rows;
  }

  async append(columnData: ColumnSource[], rows: number): Promise<void> {
    if (rows === 0) return;
    await this.writer.write({ columnData, rowGroupSize: rows });
    this.rows += rows;
  }

  async finish(): Promise<void> {
    await this.writer.finish();
  }

  /** Close the file without a footer (the caller deletes it). */
  async discard(): Promise<void> {
    await this.out.close();
  }
}

/** Write a small table in one go, atomically. */
export async function writeParquetTable(
  path: string,
  schema: WriterSchemaElement[],
  columnData: ColumnSource[],
  kvMetadata?: { key: string; value: string }[],
): Promise<void> {
  const bytes = parquetWriteBuffer({
    schema,
    columnData,
    kvMetadata,
    createdBy: 'stageward',
    rowGroupSize: Math.max(1, columnData[0]?.data.length ?? 1),
  });
  await writeFileAtomic(path, new Uint8Array(bytes));
}

export interface ParquetTable {
  metadata: FileMetaData;
  columns: string[];
  rows: Record<string, unknown>[];
}

/** Read rows [rowStart, rowEnd) of the named columns (all when absent) as objects. */
export async function readParquetRows(
  path: string,
  /** `exclude`: top-level columns not to decode (e.g. the episodes table's `stats/...` lists). */
  options: { columns?: string[]; exclude?: (column: string) => boolean; rowStart?: number; rowEnd?: number } = {},
): Promise<ParquetTable> {
  let file;
  try {
    file = await asyncBufferFromFile(path);
  } catch (err) {
    throw new StagewardError('SW_ERR_DATASET_NOT_FOUND', `cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const metadata = await parquetMetadataAsync(file);
    const present = topLevelColumns(metadata.schema);
    const wanted = options.columns ? options.columns.filter((c) => present.includes(c)) : present;
    const columns = options.exclude ? wanted.filter((c) => !options.exclude!(c)) : wanted;
    const rows = (await parquetReadObjects({ file, metadata, columns, rowStart: options.rowStart, rowEnd: options.rowEnd })) as Record<
      string,
      unknown
    >[];
    return { metadata, columns: present, rows };
  } catch (err) {
    throw new StagewardError('SW_ERR_DATASET_FORMAT', `${path} is not a readable parquet file: ${(err as Error).message}`, { cause: err });
  }
}

/** Names of the root's direct children (a list column's inner elements and a struct's fields are not columns). */
export function topLevelColumns(schema: SchemaElement[]): string[] {
  const names: string[] = [];
  for (let i = 1; i < schema.length; i = skip(schema, i)) names.push(schema[i]!.name);
  return names;
}

function skip(schema: SchemaElement[], i: number): number {
  const n = schema[i]!.num_children ?? 0;
  let j = i + 1;
  for (let c = 0; c < n; c++) j = skip(schema, j);
  return j;
}
