//! An error as one log line with its causes: wrappers (rumqttc's "TLS", the sink's "write
//! detection") keep the reason an operator needs ("unknown issuer", "violates foreign key
//! constraint") in their sources.

/// `e` and each of its sources, `: `-separated; a cause whose text the line already holds is left out.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("write detection")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_follow_the_error_once() {
        let e = Outer(std::io::Error::other("violates foreign key constraint"));
        assert_eq!(error_chain(&e), "write detection: violates foreign key constraint");
    }
}
