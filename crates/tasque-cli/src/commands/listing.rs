//! `tasque jobs` listings, written page by page as they arrive: a listing of every job
//! (`--all`) never holds more than one page in memory.
//!
//! With `--json` the output is still one JSON document, `{"jobs": [...], "next": CURSOR}`,
//! with one job per line; `next` is the cursor to pass as `--after` for the following page
//! (`null` once the last page was listed). Human output is one table whose column widths are
//! set by the first page.

use std::io::{self, BufWriter, Stdout, Write};

use tasque_durable::{JobId, JobInfo};

use crate::fail::CliError;
use crate::output;

/// The columns of the human table.
const HEADER: [&str; 7] = [
    "id",
    "queue",
    "task",
    "state",
    "attempt",
    "run at",
    "result / error",
];

/// Writes a listing one page at a time.
pub struct Listing {
    out: BufWriter<Stdout>,
    json: bool,
    listed: u64,
    widths: Option<Vec<usize>>,
    /// The reader went away (a closed pipe): stop writing, quietly.
    closed: bool,
}

impl Listing {
    /// A listing on stdout, JSON or human.
    pub fn new(json: bool) -> Self {
        Listing {
            out: BufWriter::new(io::stdout()),
            json,
            listed: 0,
            widths: None,
            closed: false,
        }
    }

    /// Whether the reader has gone (a closed pipe): listing more is pointless.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Writes one page's jobs and flushes them.
    pub fn page(&mut self, jobs: &[JobInfo]) -> Result<(), CliError> {
        let written = if self.json {
            self.json_jobs(jobs)
        } else {
            self.rows(jobs)
        };
        let flushed = written.and_then(|()| self.out.flush());
        self.settle(flushed)
    }

    /// Ends the listing: `next` is the cursor of the page after the last one written.
    pub fn finish(mut self, next: Option<JobId>) -> Result<(), CliError> {
        let written = if self.json {
            self.json_end(next)
        } else {
            self.human_end(next)
        };
        let flushed = written.and_then(|()| self.out.flush());
        self.settle(flushed)
    }

    fn json_jobs(&mut self, jobs: &[JobInfo]) -> io::Result<()> {
        for job in jobs {
            let text = serde_json::to_string(&output::job_json(job)).map_err(io::Error::other)?;
            let opening = if self.listed == 0 {
                "{\"jobs\": ["
            } else {
                ","
            };
            write!(self.out, "{opening}\n  {text}")?;
            self.listed += 1;
        }
        Ok(())
    }

    fn json_end(&mut self, next: Option<JobId>) -> io::Result<()> {
        let next = next.map_or_else(|| "null".to_owned(), |id| id.to_string());
        if self.listed == 0 {
            writeln!(self.out, "{{\"jobs\": [], \"next\": {next}}}")
        } else {
            writeln!(self.out, "\n], \"next\": {next}}}")
        }
    }

    fn rows(&mut self, jobs: &[JobInfo]) -> io::Result<()> {
        let rows: Vec<Vec<String>> = jobs.iter().map(row).collect();
        let widths = match &self.widths {
            Some(widths) => widths.clone(),
            None if rows.is_empty() => return Ok(()),
            None => {
                let widths = output::column_widths(&HEADER, &rows);
                let header: Vec<String> = HEADER.iter().map(|h| h.to_uppercase()).collect();
                writeln!(self.out, "{}", output::table_line(&widths, &header))?;
                self.widths = Some(widths.clone());
                widths
            }
        };
        for cells in &rows {
            writeln!(self.out, "{}", output::table_line(&widths, cells))?;
        }
        self.listed += rows.len() as u64;
        Ok(())
    }

    fn human_end(&mut self, next: Option<JobId>) -> io::Result<()> {
        if self.listed == 0 {
            writeln!(self.out, "no jobs match")?;
        }
        if let Some(next) = next {
            writeln!(
                self.out,
                "… more after job {next} (--after {next} for the next page, --all for every job)"
            )?;
        }
        Ok(())
    }

    /// A closed pipe ends the listing quietly; any other write error is a failure.
    fn settle(&mut self, result: io::Result<()>) -> Result<(), CliError> {
        match result {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(error) => Err(CliError::Failed(format!(
                "could not write the listing: {error}"
            ))),
        }
    }
}

/// One job as a table row.
fn row(job: &JobInfo) -> Vec<String> {
    vec![
        job.id.to_string(),
        job.queue.clone(),
        job.task.clone(),
        output::state(job.state),
        format!("{}/{}", job.attempt, job.max_attempts),
        job.run_at.format("%H:%M:%S").to_string(),
        output::short(&job.result.clone().or_else(|| job.failure.clone()), 60),
    ]
}
