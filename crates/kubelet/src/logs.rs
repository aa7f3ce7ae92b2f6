//! Container logs as upstream's kubelet serves them: CRI log files (`<RFC3339Nano> <stream> <P|F>
//! <content>` per line, `P` for a partial line continued by the next) turned back into the
//! container's output, with `tailLines` and `timestamps`. Pure: bytes in, bytes out.

/// One line of a CRI log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    pub time: &'a str,
    pub stream: &'a str,
    pub partial: bool,
    pub content: &'a str,
}

/// Parses one CRI log line (without its newline); `None` when malformed.
pub fn parse_line(line: &str) -> Option<LogLine<'_>> {
    let mut parts = line.splitn(4, ' ');
    let time = parts.next()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let content = parts.next().unwrap_or_default();
    if !matches!(stream, "stdout" | "stderr") {
        return None;
    }
    Some(LogLine {
        time,
        stream,
        partial: tag.split(':').next() == Some("P"),
        content,
    })
}

/// What a log request asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub tail_lines: Option<usize>,
    pub timestamps: bool,
}

/// The container's output from CRI log text: whole lines (partials joined), each prefixed with its
/// time when `timestamps`, only the last `tail_lines` when asked. A trailing partial line stays
/// as it is, without a newline.
pub fn render(text: &str, options: LogOptions) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut pending: Option<String> = None;
    for raw in text.lines() {
        let Some(line) = parse_line(raw) else {
            continue;
        };
        let current = pending.get_or_insert_with(|| {
            if options.timestamps {
                format!("{} ", line.time)
            } else {
                String::new()
            }
        });
        current.push_str(line.content);
        if !line.partial {
            let mut done = pending.take().unwrap_or_default();
            done.push('\n');
            lines.push(done);
        }
    }
    if let Some(rest) = pending {
        lines.push(rest);
    }
    let skip = options
        .tail_lines
        .map_or(0, |n| lines.len().saturating_sub(n));
    lines[skip..].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "2026-11-23T14:00:00.000000001Z stdout F one\n\
        2026-11-23T14:00:00.1Z stderr P tw\n\
        2026-11-23T14:00:00.2Z stderr F o\n\
        garbage\n\
        2026-11-23T14:00:01Z stdout F \n\
        2026-11-23T14:00:02Z stdout F three words here\n";

    #[test]
    fn lines_are_parsed_with_their_stream_and_tag() {
        let l = parse_line("2026-11-23T14:00:00Z stdout P a b").expect("line");
        assert_eq!(l.stream, "stdout");
        assert!(l.partial);
        assert_eq!(l.content, "a b");
        assert_eq!(parse_line("x y"), None);
    }

    #[test]
    fn logs_render_as_the_container_wrote_them() {
        assert_eq!(
            render(TEXT, LogOptions::default()),
            "one\ntwo\n\nthree words here\n"
        );
        assert_eq!(
            render(
                TEXT,
                LogOptions {
                    tail_lines: Some(2),
                    timestamps: false
                }
            ),
            "\nthree words here\n"
        );
        assert_eq!(
            render(
                TEXT,
                LogOptions {
                    tail_lines: Some(1),
                    timestamps: true
                }
            ),
            "2026-11-23T14:00:02Z three words here\n"
        );
        assert_eq!(
            render(
                "t stdout P half",
                LogOptions {
                    tail_lines: Some(0),
                    timestamps: false
                }
            ),
            ""
        );
        assert_eq!(render("t stdout P half", LogOptions::default()), "half");
    }
}
