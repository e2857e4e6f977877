//! A Parquet file made of row groups whose column chunks come from [`ChunkEncoder`] where the
//! column is one of its types and from arrow-rs's column writer otherwise; the file's schema,
//! row groups and footer are arrow-rs's (`SerializedFileWriter`), with the Arrow schema in its
//! metadata as `ArrowWriter` writes it. The encoded bytes collect in memory and are taken out
//! after each row group ([`FileEncoder::take_bytes`]), so memory is one row group.

use super::encode::{ChunkEncoder, Compressor};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::{ArrowSchemaConverter, add_encoded_arrow_schema_to_metadata};
use parquet::errors::Result;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use std::sync::Arc;

enum Column {
    Ours(Box<ChunkEncoder>),
    /// arrow-rs's writers for the leaves of one Arrow field (one, unless the field is nested).
    Arrow(Vec<ArrowColumnWriter>),
}

pub struct FileEncoder {
    file: SerializedFileWriter<Vec<u8>>,
    schema: SchemaRef,
    factory: ArrowRowGroupWriterFactory,
    zstd: Compressor,
    group: Option<Vec<Column>>,
    /// Our encoders, kept from one row group to the next for their buffers.
    spare: Vec<Option<Box<ChunkEncoder>>>,
    rows: usize,
    max_rows: usize,
    max_bytes: usize,
    written: usize,
}

impl FileEncoder {
    /// A file of `schema` with the codec, dictionaries and row-group rows of `props`, a row
    /// group also closed once it holds about `max_bytes` encoded.
    pub fn new(schema: SchemaRef, mut props: WriterProperties, max_bytes: usize) -> Result<FileEncoder> {
        let descr = ArrowSchemaConverter::new().convert(&schema)?;
        add_encoded_arrow_schema_to_metadata(&schema, &mut props);
        let max_rows = props.max_row_group_row_count().unwrap_or(usize::MAX);
        let file = SerializedFileWriter::new(Vec::new(), descr.root_schema_ptr(), Arc::new(props))?;
        let factory = ArrowRowGroupWriterFactory::new(&file, schema.clone());
        Ok(FileEncoder {
            file,
            schema,
            factory,
            zstd: Compressor::default(),
            group: None,
            spare: Vec::new(),
            rows: 0,
            max_rows,
            max_bytes,
            written: 0,
        })
    }

    /// The writers of a new row group: ours where the column is one of our types, arrow-rs's
    /// for the rest.
    fn open_group(&mut self) -> Result<Vec<Column>> {
        let mut arrow = self.factory.create_column_writers(self.file.flushed_row_groups().len())?.into_iter();
        let descr = self.file.schema_descr();
        let props = self.file.properties();
        let mut leaf = 0;
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        for (i, field) in self.schema.fields().iter().enumerate() {
            // The leaves of this field (one for a flat field), in the file schema's order.
            let leaves = leaf_count(&descr.root_schema().get_fields()[i]);
            let ours = match self.spare.get_mut(i).and_then(Option::take) {
                Some(enc) => Some(enc),
                None if leaves == 1 => ChunkEncoder::new(field.data_type(), descr.column(leaf), props).map(Box::new),
                None => None,
            };
            let writers: Vec<ArrowColumnWriter> = arrow.by_ref().take(leaves).collect();
            columns.push(match ours {
                Some(enc) => Column::Ours(enc),
                None => Column::Arrow(writers),
            });
            leaf += leaves;
        }
        Ok(columns)
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        // A batch that would overfill the row group is split at its limit, as ArrowWriter does.
        if self.rows + batch.num_rows() > self.max_rows {
            let fits = self.max_rows - self.rows;
            self.write(&batch.slice(0, fits))?;
            return self.write(&batch.slice(fits, batch.num_rows() - fits));
        }
        if self.group.is_none() {
            self.group = Some(self.open_group()?);
        }
        let group = self.group.as_mut().expect("opened");
        for ((column, field), array) in group.iter_mut().zip(self.schema.fields()).zip(batch.columns()) {
            match column {
                Column::Ours(enc) => enc.write(array.as_ref(), &mut self.zstd)?,
                Column::Arrow(writers) => {
                    for (w, leaf) in writers.iter_mut().zip(compute_leaves(field, array)?) {
                        w.write(&leaf)?;
                    }
                }
            }
        }
        self.rows += batch.num_rows();
        if self.rows >= self.max_rows || self.in_progress_size() >= self.max_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Encoded bytes of the row group in progress.
    pub fn in_progress_size(&self) -> usize {
        self.group.as_ref().map_or(0, |g| {
            g.iter()
                .map(|c| match c {
                    Column::Ours(enc) => enc.buffered_bytes(),
                    Column::Arrow(ws) => ws.iter().map(|w| w.get_estimated_total_bytes()).sum(),
                })
                .sum()
        })
    }

    /// Bytes of the file taken out so far ([`FileEncoder::take_bytes`]).
    pub fn bytes_written(&self) -> usize {
        self.written
    }

    /// Closes the row group in progress, if any.
    pub fn flush(&mut self) -> Result<()> {
        let Some(group) = self.group.take() else { return Ok(()) };
        let mut rg = self.file.next_row_group()?;
        self.spare.clear();
        for column in group {
            match column {
                Column::Ours(mut enc) => {
                    let (bytes, close) = enc.close(&mut self.zstd)?;
                    rg.append_column(&bytes, close)?;
                    self.spare.push(Some(enc));
                }
                Column::Arrow(writers) => {
                    for w in writers {
                        w.close()?.append_to_row_group(&mut rg)?;
                    }
                    self.spare.push(None);
                }
            }
        }
        rg.close()?;
        self.rows = 0;
        Ok(())
    }

    /// The bytes encoded since the last call, to be written out.
    pub fn take_bytes(&mut self) -> Result<Vec<u8>> {
        self.file.flush()?;
        let bytes = std::mem::take(self.file.inner_mut());
        self.written += bytes.len();
        Ok(bytes)
    }

    /// Closes the last row group and writes the footer; the bytes left are returned.
    pub fn finish(&mut self) -> Result<Vec<u8>> {
        self.flush()?;
        self.file.finish()?;
        self.take_bytes()
    }
}

/// The leaf columns of a field of the Parquet schema.
fn leaf_count(t: &parquet::schema::types::Type) -> usize {
    if t.is_primitive() { 1 } else { t.get_fields().iter().map(|f| leaf_count(f)).sum() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray,
        Time64MicrosecondArray, TimestampMicrosecondArray,
    };
    use arrow::compute::concat_batches;
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use bytes::Bytes;
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::reader::{FileReader, SerializedFileReader};

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn schema() -> SchemaRef {
        let utc = Some("UTC".into());
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("maybe", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, utc), false),
            Field::new("at", DataType::Time64(TimeUnit::Microsecond), true),
            Field::new("day", DataType::Date32, true),
            Field::new("small", DataType::Int32, false),
            Field::new("price", DataType::Decimal128(12, 2), false),
            Field::new("rate", DataType::Decimal128(5, 1), true),
            Field::new("wide", DataType::Decimal128(30, 2), true),
            Field::new("ratio", DataType::Float64, true),
            Field::new("flag", DataType::Boolean, true),
            Field::new("code", DataType::Utf8, false),
            Field::new("sku", DataType::Utf8, false),
            Field::new("note", DataType::Utf8, true),
            Field::new("drift", DataType::Utf8, false),
        ]))
    }

    /// `rows` rows from `first`: codes from a few short and long words, unique skus, notes
    /// mostly null and sometimes long (past the 64-byte statistics), and a column whose values
    /// turn distinct after its first rows (its dictionary passes 1 MiB and is given up).
    fn batch(rng: &mut Rng, first: usize, rows: usize) -> RecordBatch {
        let codes = ["USD", "EUR", "", "a much longer code word", "GBP", "ünïcødé"];
        let idx = |r: &mut Rng, p: u64| r.below(100) >= p;
        let mut id = Vec::new();
        let (mut maybe, mut ts, mut at, mut day, mut small) = (vec![], vec![], vec![], vec![], vec![]);
        let (mut price, mut rate, mut wide, mut ratio, mut flag) = (vec![], vec![], vec![], vec![], vec![]);
        let (mut code, mut sku, mut note, mut drift) = (vec![], vec![], vec![], vec![]);
        for k in first..first + rows {
            id.push(rng.next() as i64);
            maybe.push(idx(rng, 10).then(|| rng.below(50) as i64 - 25));
            ts.push(1_700_000_000_000_000 + k as i64 * 5_000_000);
            at.push(idx(rng, 3).then(|| rng.below(86_400_000_000) as i64));
            day.push(idx(rng, 3).then(|| rng.below(40_000) as i32 - 20_000));
            small.push(rng.below(20) as i32 + 1);
            price.push(rng.below(100_000_000) as i128 - 50_000_000);
            rate.push(idx(rng, 5).then(|| rng.below(99_999) as i128));
            wide.push(idx(rng, 5).then(|| rng.next() as i128 * 1_000_003));
            ratio.push(idx(rng, 5).then(|| rng.below(1000) as f64 / 7.0));
            flag.push(idx(rng, 5).then(|| rng.below(2) == 1));
            code.push(codes[rng.below(codes.len() as u64) as usize].to_string());
            sku.push(format!("SKU-{:08}", k));
            note.push(
                idx(rng, 90).then(|| if rng.below(4) == 0 { "x".repeat(70 + k % 7) } else { format!("n{}", k % 3) }),
            );
            drift.push(if k < 5_000 { format!("same-{}", k % 4) } else { format!("distinct-value-number-{k}") });
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(id)),
            Arc::new(Int64Array::from(maybe)),
            Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
            Arc::new(Time64MicrosecondArray::from(at)),
            Arc::new(Date32Array::from(day)),
            Arc::new(Int32Array::from(small)),
            Arc::new(Decimal128Array::from(price).with_precision_and_scale(12, 2).unwrap()),
            Arc::new(Decimal128Array::from(rate).with_precision_and_scale(5, 1).unwrap()),
            Arc::new(Decimal128Array::from(wide).with_precision_and_scale(30, 2).unwrap()),
            Arc::new(Float64Array::from(ratio)),
            Arc::new(BooleanArray::from(flag)),
            Arc::new(StringArray::from(code)),
            Arc::new(StringArray::from(sku)),
            Arc::new(StringArray::from(note)),
            Arc::new(StringArray::from(drift)),
        ];
        RecordBatch::try_new(schema(), columns).unwrap()
    }

    fn props(compress: bool, plain: &[String]) -> WriterProperties {
        let codec =
            if compress { Compression::ZSTD(ZstdLevel::try_new(1).unwrap()) } else { Compression::UNCOMPRESSED };
        let mut b = WriterProperties::builder().set_compression(codec).set_max_row_group_row_count(Some(40_000));
        for name in plain {
            b = b.set_column_dictionary_enabled(parquet::schema::types::ColumnPath::from(name.as_str()), false);
        }
        b.build()
    }

    fn props_rows(rows: usize) -> WriterProperties {
        let zstd = Compression::ZSTD(ZstdLevel::try_new(1).unwrap());
        WriterProperties::builder().set_compression(zstd).set_max_row_group_row_count(Some(rows)).build()
    }

    fn ours(batches: &[RecordBatch], compress: bool, plain: &[String]) -> Bytes {
        let mut enc = FileEncoder::new(schema(), props(compress, plain), 64 << 20).unwrap();
        let mut out = Vec::new();
        for b in batches {
            enc.write(b).unwrap();
            out.extend(enc.take_bytes().unwrap());
        }
        out.extend(enc.finish().unwrap());
        Bytes::from(out)
    }

    fn arrow_rs(batches: &[RecordBatch], compress: bool, plain: &[String]) -> Bytes {
        let mut w = ArrowWriter::try_new(Vec::new(), schema(), Some(props(compress, plain))).unwrap();
        for b in batches {
            w.write(b).unwrap();
        }
        Bytes::from(w.into_inner().unwrap())
    }

    fn read(file: &Bytes) -> RecordBatch {
        let reader = ParquetRecordBatchReaderBuilder::try_new(file.clone()).unwrap().build().unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        concat_batches(&schema(), &batches).unwrap()
    }

    /// Every column chunk's statistics, row group by row group, in a comparable form.
    fn statistics(file: &Bytes) -> Vec<String> {
        let reader = SerializedFileReader::new(file.clone()).unwrap();
        let meta = reader.metadata();
        let mut out = Vec::new();
        for rg in meta.row_groups() {
            for c in rg.columns() {
                let s = c.statistics().expect("statistics written");
                let (min, max) = match (s.min_bytes_opt(), s.max_bytes_opt(), s.min_is_exact(), s.max_is_exact()) {
                    // arrow-rs truncates long strings' min and max; ours leaves them out.
                    (Some(_), Some(_), false, _) | (Some(_), Some(_), _, false) => (None, None),
                    (min, max, _, _) => (min.map(<[u8]>::to_vec), max.map(<[u8]>::to_vec)),
                };
                out.push(format!(
                    "{} rows {} nulls {:?} min {min:?} max {max:?}",
                    c.column_path(),
                    rg.num_rows(),
                    s.null_count_opt()
                ));
            }
        }
        out
    }

    #[test]
    fn a_file_reads_back_as_its_batches_with_the_statistics_arrow_rs_writes() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Batches of uneven sizes, so that row groups of 40,000 rows split them.
        let mut batches = Vec::new();
        let mut first = 0;
        for rows in [1, 8191, 30_000, 17, 45_000, 8192, 12_345] {
            batches.push(batch(&mut rng, first, rows));
            first += rows;
        }
        let whole = concat_batches(&schema(), &batches).unwrap();
        for (compress, plain) in [
            (true, vec![]),
            (false, vec![]),
            (true, ["id", "maybe", "day", "rate", "code", "sku", "note"].map(String::from).to_vec()),
        ] {
            let file = ours(&batches, compress, &plain);
            assert_eq!(read(&file), whole, "compress {compress}, plain {plain:?}");
            let reference = arrow_rs(&batches, compress, &plain);
            assert_eq!(statistics(&file), statistics(&reference), "compress {compress}, plain {plain:?}");
            // The same encodings as arrow-rs's, chunk by chunk (dictionary or plain).
            let encodings = |f: &Bytes| -> Vec<String> {
                let r = SerializedFileReader::new(f.clone()).unwrap();
                r.metadata()
                    .row_groups()
                    .iter()
                    .flat_map(|rg| {
                        rg.columns()
                            .iter()
                            .map(|c| format!("{} {:?}", c.column_path(), c.encodings().collect::<Vec<_>>()))
                    })
                    .collect()
            };
            assert_eq!(encodings(&file), encodings(&reference), "compress {compress}, plain {plain:?}");
        }
    }

    #[test]
    fn nested_columns_from_a_transform_sit_beside_ours_in_the_same_row_groups() {
        use arrow::array::{ListArray, StructArray};
        use arrow::datatypes::Int64Type;
        // A list and a struct (two leaves) between two of our columns: arrow-rs writes the
        // nested leaves, we write the others, in one file of several row groups.
        let point = arrow::datatypes::Fields::from(vec![
            Field::new("x", DataType::Int64, true),
            Field::new("label", DataType::Utf8, true),
        ]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("tags", DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true))), true),
            Field::new("point", DataType::Struct(point.clone()), true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = |first: i64, rows: i64| {
            let ids: Vec<i64> = (first..first + rows).collect();
            let tags = ListArray::from_iter_primitive::<Int64Type, _, _>(
                ids.iter().map(|&i| (i % 5 != 0).then(|| (0..i % 4).map(|k| Some(i * 10 + k)).collect::<Vec<_>>())),
            );
            let point = StructArray::new(
                point.clone(),
                vec![
                    Arc::new(Int64Array::from(ids.iter().map(|&i| (i % 3 != 0).then_some(-i)).collect::<Vec<_>>())),
                    Arc::new(StringArray::from(ids.iter().map(|&i| Some(format!("p{}", i % 7))).collect::<Vec<_>>())),
                ],
                Some(ids.iter().map(|&i| i % 11 != 0).collect::<Vec<bool>>().into()),
            );
            let names =
                StringArray::from(ids.iter().map(|&i| (i % 2 == 0).then(|| format!("n{i}"))).collect::<Vec<_>>());
            let columns: Vec<ArrayRef> =
                vec![Arc::new(Int64Array::from(ids)), Arc::new(tags), Arc::new(point), Arc::new(names)];
            RecordBatch::try_new(schema.clone(), columns).unwrap()
        };
        let batches = [batch(0, 30_000), batch(30_000, 25_000)];
        let mut enc = FileEncoder::new(schema.clone(), props_rows(20_000), 64 << 20).unwrap();
        let mut out = Vec::new();
        for b in &batches {
            enc.write(b).unwrap();
            out.extend(enc.take_bytes().unwrap());
        }
        out.extend(enc.finish().unwrap());
        let file = Bytes::from(out);
        let reader = ParquetRecordBatchReaderBuilder::try_new(file.clone()).unwrap().build().unwrap();
        let read: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(concat_batches(&schema, &read).unwrap(), concat_batches(&schema, &batches).unwrap());
        let meta = SerializedFileReader::new(file).unwrap().metadata().clone();
        assert_eq!(meta.num_row_groups(), 3);
        assert_eq!(meta.row_group(0).num_columns(), 5, "id, tags.list.element, point.x, point.label, name");
    }

    #[test]
    fn an_empty_file_has_the_schema_and_no_rows() {
        let mut enc = FileEncoder::new(schema(), props(true, &[]), 64 << 20).unwrap();
        let file = Bytes::from(enc.finish().unwrap());
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(builder.schema(), &schema());
        assert_eq!(builder.metadata().file_metadata().num_rows(), 0);
    }
}
