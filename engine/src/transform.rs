//! The contract's optional DataFusion SQL, applied to validated rows as they stream.
//!
//! The validated rows are the table `input`. The query is planned when the contract is
//! loaded (so a typo in it is a contract error, and the output schema is known before any file
//! is read), and executed over a [`StreamingTable`] fed batch by batch: nothing is
//! materialised unless the query itself needs it (an `ORDER BY` or an aggregate over the whole
//! file does; a projection or filter does not). It runs under a memory pool of
//! [`crate::Limits::transform_memory_bytes`]: a sort spills to disk past it, and a query that
//! cannot spill fails with "Resources exhausted" instead of taking the machine's memory.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A planned transform.
#[derive(Debug, Clone)]
pub struct Transform {
    sql: String,
    input_schema: SchemaRef,
    output_schema: SchemaRef,
}

fn options() -> SQLOptions {
    // A transform is a query: no DDL, no DML, no `SET`.
    SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
}

fn context(threads: usize) -> SessionContext {
    SessionContext::new_with_config(SessionConfig::new().with_target_partitions(threads.max(1)))
}

/// A context whose operators share one pool of `memory_bytes`.
fn bounded_context(threads: usize, memory_bytes: usize) -> Result<SessionContext, DataFusionError> {
    let runtime = RuntimeEnvBuilder::new().with_memory_limit(memory_bytes, 1.0).build_arc()?;
    Ok(SessionContext::new_with_config_rt(SessionConfig::new().with_target_partitions(threads.max(1)), runtime))
}

impl Transform {
    /// Plans `sql` over a table `input` with `input_schema`; errors are DataFusion's message.
    pub fn plan(sql: &str, input_schema: SchemaRef) -> Result<Transform, DataFusionError> {
        let ctx = context(1);
        let empty = MemTable::try_new(input_schema.clone(), vec![vec![]])?;
        ctx.register_table("input", Arc::new(empty))?;
        // Planning an in-memory table does no I/O, so it is safe to drive here synchronously.
        let df = futures::executor::block_on(ctx.sql_with_options(sql, options()))?;
        let output_schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        Ok(Transform { sql: sql.to_string(), input_schema, output_schema })
    }

    pub fn output_schema(&self) -> SchemaRef {
        self.output_schema.clone()
    }

    /// Runs the query over the batches received on `rx`, within `memory_bytes`.
    pub async fn execute(
        &self,
        rx: mpsc::Receiver<RecordBatch>,
        threads: usize,
        memory_bytes: usize,
    ) -> Result<SendableRecordBatchStream, DataFusionError> {
        let stream = tokio_stream_from(rx).map(Ok::<_, DataFusionError>);
        let input: SendableRecordBatchStream =
            Box::pin(RecordBatchStreamAdapter::new(self.input_schema.clone(), stream));
        let part = Arc::new(OneShot { schema: self.input_schema.clone(), stream: Mutex::new(Some(input)) });
        let ctx = bounded_context(threads, memory_bytes)?;
        ctx.register_table("input", Arc::new(StreamingTable::try_new(self.input_schema.clone(), vec![part])?))?;
        ctx.sql_with_options(&self.sql, options()).await?.execute_stream().await
    }
}

fn tokio_stream_from(mut rx: mpsc::Receiver<RecordBatch>) -> impl futures::Stream<Item = RecordBatch> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A partition that hands out its one stream once.
struct OneShot {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl std::fmt::Debug for OneShot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneShot")
    }
}

impl PartitionStream for OneShot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        match self.stream.lock().expect("lock").take() {
            Some(s) => s,
            None => {
                let err = DataFusionError::Execution("the validated input stream can be read only once".into());
                Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), futures::stream::once(async { Err(err) })))
            }
        }
    }
}
