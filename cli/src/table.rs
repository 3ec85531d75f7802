//! Human tables: left-aligned columns as wide as their widest cell, the
//! layout `mesos task list` and `kubectl get` print.

/// Lays out `header` and `rows` as aligned columns, one line each.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = widths.get(i).copied().unwrap_or(0) - cell.chars().count();
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let out = render(
            &["ID", "STATE"],
            &[
                vec!["a".into(), "TASK_RUNNING".into()],
                vec!["long-id".into(), "TASK_FINISHED".into()],
            ],
        );
        assert_eq!(
            out,
            "ID       STATE\na        TASK_RUNNING\nlong-id  TASK_FINISHED\n"
        );
    }
}
