//! `-R`: commands from standard input.
//!
//! [`split_restore_line`] is ipvsadm's `config_stream_read` (an `fscanf`
//! loop): words are split on space, tab, CR and LF; the word `ipvsadm` is
//! dropped; `#` means nothing. Two quirks survive from the C: a word longer
//! than 4096 bytes is cut into 4096-byte pieces, and when the input ends in
//! more than one blank after the last word (no newline), that last line is
//! thrown away.
//!
//! The driver runs each line like a command line. Consecutive table writes
//! go to rvsd in one [`rvs_ctl::Request::Batch`], but nothing that prints
//! or exits runs before the queued writes are flushed and their errors
//! printed, so the output is the same as line-by-line execution.

use crate::errors::kernel_message;
use crate::parse::{parse_args_with, Exit};
use crate::run::{write_request, Runner, Stop, Write1};
use rvs_ctl::{Request, Response};

/// fscanf's `%4096[^ \t\n\r]` width.
const MAX_WORD: usize = 4096;

fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// `config_stream_read`: the words of the next line starting at `*pos`,
/// without the `ipvsadm` words. `None` means "stop reading" (end of input,
/// or the trailing-blanks quirk). An empty vector is an empty line.
pub fn split_restore_line(input: &[u8], pos: &mut usize) -> Option<Vec<String>> {
    let mut words: Vec<String> = Vec::new();
    loop {
        if *pos >= input.len() {
            // fscanf() == EOF.
            return if words.is_empty() { None } else { Some(words) };
        }
        if is_sep(input[*pos]) {
            // The word conversion failed: skip blanks up to a newline.
            loop {
                match input.get(*pos) {
                    None => return None,
                    Some(b'\n') => {
                        *pos += 1;
                        return Some(words);
                    }
                    Some(&b) if is_sep(b) => *pos += 1,
                    Some(_) => break,
                }
            }
            continue;
        }
        let start = *pos;
        while *pos < input.len() && !is_sep(input[*pos]) && *pos - start < MAX_WORD {
            *pos += 1;
        }
        let raw = &input[start..*pos];
        // The word is a C string from here on: it ends at a NUL byte.
        let raw = match raw.iter().position(|&b| b == 0) {
            Some(n) => &raw[..n],
            None => raw,
        };
        let mut newline = false;
        if *pos < input.len() && is_sep(input[*pos]) {
            newline = input[*pos] == b'\n';
            *pos += 1;
        }
        if raw != b"ipvsadm" {
            words.push(String::from_utf8_lossy(raw).into_owned());
        }
        if newline {
            return Some(words);
        }
    }
}

/// How a restore line ended: a known result, or a queued write.
enum Outcome {
    Done(i32),
    Queued(usize),
}

/// Writes sent in one round trip at most.
const BATCH_MAX: usize = 4096;

impl Runner<'_> {
    /// Sends the queued writes and prints their errors in order; returns
    /// each write's result (0 or -1).
    fn flush_writes(&mut self, queue: &mut Vec<Write1>) -> Result<Vec<i32>, Stop> {
        let mut results = Vec::with_capacity(queue.len());
        let all: Vec<Write1> = std::mem::take(queue);
        for chunk in all.chunks(BATCH_MAX) {
            if chunk.len() == 1 {
                let w = &chunk[0];
                results.push(self.write(Write1 {
                    req: w.req.clone(),
                    op: w.op,
                })?);
                continue;
            }
            let reqs: Vec<Request> = chunk.iter().map(|w| w.req.clone()).collect();
            let resp = self.call(&Request::Batch(reqs))?;
            let answers = match resp {
                Ok(Response::Batch(a)) if a.len() == chunk.len() => a,
                Ok(other) => {
                    let msg = format!("rvsadm: unexpected answer from rvsd: {other:?}\n");
                    self.eprint(&msg);
                    return Err(Stop(2));
                }
                Err(e) => {
                    let msg = format!("rvsadm: rvsd refused a batch: {e}\n");
                    self.eprint(&msg);
                    return Err(Stop(2));
                }
            };
            for (w, a) in chunk.iter().zip(answers) {
                match a {
                    Response::Err(e) => {
                        let msg = format!("{}\n", kernel_message(w.op, e));
                        self.eprint(&msg);
                        results.push(-1);
                    }
                    Response::Refused(m) => {
                        self.eprint(&format!("{m}\n"));
                        results.push(-1);
                    }
                    _ => results.push(0),
                }
            }
        }
        Ok(results)
    }

    /// `restore_table`.
    pub(crate) fn restore(&mut self, reading_stdin: bool) -> Result<i32, Stop> {
        if reading_stdin {
            return self.exit_for(Exit::TryHelp);
        }
        let mut input = Vec::new();
        let _ = self.stdin.read_to_end(&mut input);
        let mut pos = 0;
        let mut queue: Vec<Write1> = Vec::new();
        let mut last = Outcome::Done(0);
        let prog = self.prog.clone();
        let finish = |this: &mut Self,
                      queue: &mut Vec<Write1>,
                      last: &Outcome|
         -> Result<Option<i32>, Stop> {
            if queue.is_empty() {
                return Ok(None);
            }
            let results = this.flush_writes(queue)?;
            Ok(match last {
                Outcome::Queued(i) => Some(results[*i]),
                Outcome::Done(_) => None,
            })
        };
        while let Some(words) = split_restore_line(&input, &mut pos) {
            if words.is_empty() {
                continue;
            }
            let mut argv = Vec::with_capacity(words.len() + 1);
            argv.push(prog.clone());
            argv.extend(words);
            let parsed = parse_args_with(&argv, self.names, self.posix);
            if let Ok(cmd) = &parsed {
                if let Some(w) = write_request(cmd) {
                    queue.push(w);
                    last = Outcome::Queued(queue.len() - 1);
                    continue;
                }
            }
            finish(self, &mut queue, &last)?;
            let r = match parsed {
                Ok(cmd) => self.execute(&cmd, true)?,
                Err(e) => self.exit_for(e)?,
            };
            last = Outcome::Done(r);
        }
        if let Some(r) = finish(self, &mut queue, &last)? {
            last = Outcome::Done(r);
        }
        Ok(match last {
            Outcome::Done(r) => r,
            Outcome::Queued(_) => 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::resolve::NameDb;
    use crate::run::{Backend, Connector};
    use rvs_core::Errno;
    use rvs_ctl::{ClientError, Info};
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Answers every write with "exists" for the second add of a service,
    /// and records the requests it saw.
    struct Fake {
        log: Rc<RefCell<Vec<String>>>,
        added: Vec<String>,
    }

    impl Fake {
        fn apply(&mut self, r: &Request) -> Response {
            match r {
                Request::AddService { key, .. } => {
                    let k = format!("{key:?}");
                    if self.added.contains(&k) {
                        Response::Err(Errno::Exist)
                    } else {
                        self.added.push(k);
                        Response::Ok
                    }
                }
                Request::GetInfo => Response::Info(Info {
                    version: 0x010201,
                    conn_tab_size: 4096,
                }),
                Request::GetServices => Response::Services(Vec::new()),
                _ => Response::Ok,
            }
        }
    }

    impl Backend for Fake {
        fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
            let name = match req {
                Request::Batch(rs) => format!("Batch({})", rs.len()),
                other => format!("{other:?}")
                    .split([' ', '{', '('])
                    .next()
                    .unwrap()
                    .to_string(),
            };
            self.log.borrow_mut().push(name);
            Ok(match req {
                Request::Batch(rs) => Response::Batch(rs.iter().map(|r| self.apply(r)).collect()),
                r => self.apply(r),
            })
        }
    }

    fn restore(input: &str) -> (i32, String, String, Vec<String>) {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let connector: Connector = Box::new(move || {
            Ok(Box::new(Fake {
                log: l.clone(),
                added: Vec::new(),
            }) as Box<dyn Backend>)
        });
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut stdin = input.as_bytes();
        let names = NameDb::default();
        let code = Runner::new(
            "ipvsadm".into(),
            &mut out,
            &mut err,
            &mut stdin,
            &names,
            "s".into(),
            connector,
        )
        .run(&["ipvsadm".to_string(), "-R".to_string()]);
        let log = log.borrow().clone();
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
            log,
        )
    }

    #[test]
    fn writes_are_batched_and_errors_keep_their_order() {
        let (code, out, err, log) = restore(
            "-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80\n-A -t 10.0.0.2:80\n-L -n\n-A -t 10.0.0.2:80\n",
        );
        assert_eq!(log, ["Batch(3)", "GetInfo", "GetServices", "AddService"]);
        assert_eq!(err, "Service already exists\nService already exists\n");
        assert!(out.starts_with("IP Virtual Server version 1.2.1 (size=4096)\n"));
        assert_eq!(code, 255, "the last line failed");
    }

    #[test]
    fn a_validation_error_flushes_then_aborts() {
        let (code, _, err, log) =
            restore("-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80\n-A -t 1.2.3.4:99999\n-C\n");
        assert_eq!(log, ["Batch(2)"]);
        assert_eq!(
            err,
            "Service already exists\nillegal virtual server address[:port] specified\n"
        );
        assert_eq!(code, 2);
        let (code, _, err, log) = restore("-A -t 10.0.0.1:80 --bogus\n-C\n");
        assert_eq!((code, err.as_str()), (0, "--bogus: unknown option\n"));
        assert_eq!(log, ["Flush"]);
        let (code, _, err, _) = restore("-R\n");
        assert_eq!(
            (code, err.as_str()),
            (
                255,
                "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n"
            )
        );
    }

    fn lines(input: &[u8]) -> Vec<Vec<String>> {
        let mut pos = 0;
        let mut out = Vec::new();
        while let Some(l) = split_restore_line(input, &mut pos) {
            out.push(l);
        }
        out
    }

    fn w(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn words_lines_and_ipvsadm_tokens() {
        assert_eq!(
            lines(b"ipvsadm -A -t 10.0.0.9:80 -s rr\n\n   \n-a -t 10.0.0.9:80 -r 192.168.9.1 -m\n"),
            vec![
                w(&["-A", "-t", "10.0.0.9:80", "-s", "rr"]),
                vec![],
                vec![],
                w(&["-a", "-t", "10.0.0.9:80", "-r", "192.168.9.1", "-m"]),
            ]
        );
        assert_eq!(
            lines(b"-A\t-t\t10.0.0.18:80\t-s\trr"),
            vec![w(&["-A", "-t", "10.0.0.18:80", "-s", "rr"])]
        );
        assert_eq!(lines(b"-C\r\n"), vec![w(&["-C"])]);
        assert_eq!(
            lines(b"-A -t x # c\n"),
            vec![w(&["-A", "-t", "x", "#", "c"])]
        );
        assert_eq!(lines(b"ipvsadm\n"), vec![Vec::<String>::new()]);
        assert_eq!(lines(b""), Vec::<Vec<String>>::new());
        assert_eq!(lines(b"\x0b-A\n"), vec![w(&["\u{b}-A"])]);
    }

    #[test]
    fn trailing_blanks_at_eof_drop_the_line() {
        assert_eq!(
            lines(b"-A -t 10.0.0.2:80 "),
            vec![w(&["-A", "-t", "10.0.0.2:80"])]
        );
        assert_eq!(lines(b"-A -t 10.0.0.1:80  "), Vec::<Vec<String>>::new());
        assert_eq!(lines(b"-C\n-A -t 10.0.0.3:80\t\t"), vec![w(&["-C"])]);
        assert_eq!(lines(b"-C\n   "), vec![w(&["-C"])]);
    }

    #[test]
    fn long_words_are_cut_and_nul_ends_a_word() {
        let mut input = vec![b'a'; 5000];
        input.push(b'\n');
        let l = lines(&input);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].len(), 2);
        assert_eq!(l[0][0].len(), 4096);
        assert_eq!(l[0][1].len(), 904);
        assert_eq!(lines(b"-L\0junk -n\n"), vec![w(&["-L", "-n"])]);
    }
}
