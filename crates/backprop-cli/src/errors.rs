//! How an error ends the process: its message on one line and its exit code.

/// The error and its causes on one line.
pub fn chain(e: &anyhow::Error) -> String {
    let mut s = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
    }
    if e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    }) {
        s.push_str("; check the path");
    }
    s
}

/// 1 when training itself failed (diverged), 2 for bad usage or bad input.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.is::<crate::interrupt::Interrupted>() {
        return crate::interrupt::EXIT_CODE;
    }
    match e.downcast_ref::<backprop::Error>() {
        Some(backprop::Error::NonFinite { .. }) => 1,
        _ => 2,
    }
}
