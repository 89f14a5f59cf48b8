//! How much stack classifying a statement may need, from its tokens, before anything is parsed.
//!
//! sqlparser builds chains of operators (`1 + 1 + …`, `x::int::int…`, `… UNION …`) as trees as
//! deep as the chain is long. Its parser and visitor grow their stack on demand, but dropping
//! the tree, and this crate's own recursion over it, do not: one long enough chain in a query
//! would overflow the stack and abort the whole gateway. So the depth is bounded from the
//! tokens first, the work runs with that much stack guaranteed ([`stacker::maybe_grow`], which
//! allocates a larger stack only when the current one is short), and text beyond
//! [`MAX_DEPTH`] is refused as unparsable (PostgreSQL itself refuses such queries with "stack
//! depth limit exceeded").
//!
//! The bound: every node of a chain has its operator token at the chain's parenthesis level,
//! and a chain never spans a `,` at that level (commas separate list items, which sqlparser
//! keeps in vectors) except for set operations. So the depth at any token is at most the sum,
//! over the open parenthesis levels, of the tokens since that level's last comma, plus the set
//! operators seen at that level, plus the number of levels. Bulk `INSERT … VALUES (…), (…)`
//! stays shallow; only real chains count.

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan};

/// Deeper trees are refused: at [`STACK_PER_LEVEL`], this is 32 MiB of stack.
pub(crate) const MAX_DEPTH: usize = 64 * 1024;

/// Stack reserved per level of tree depth: dropping a level takes under 100 bytes in debug
/// builds (measured), this crate's recursion a little more.
const STACK_PER_LEVEL: usize = 512;

/// Stack reserved for everything that does not grow with depth (the parser's own recursion is
/// bounded by its recursion limit and grows its stack itself).
const STACK_BASE: usize = 256 * 1024;

/// The stack to guarantee for classifying these tokens, or `None` when their tree could be
/// deeper than [`MAX_DEPTH`].
pub(crate) fn stack_needed(tokens: &[TokenWithSpan]) -> Option<usize> {
    let depth = max_depth(tokens);
    (depth <= MAX_DEPTH).then(|| STACK_BASE + depth * STACK_PER_LEVEL)
}

/// The upper bound on the tree depth described in the module documentation.
fn max_depth(tokens: &[TokenWithSpan]) -> usize {
    /// One parenthesis level: tokens since its last comma, and its set operators.
    #[derive(Default, Clone, Copy)]
    struct Level {
        run: usize,
        sets: usize,
    }
    let mut levels = vec![Level::default()];
    // Kept equal to the sum of every level's `run + sets` plus the number of levels, so that
    // each token costs O(1) even under thousands of open parentheses.
    let mut depth: usize = 1;
    let mut max = depth;
    for t in tokens {
        match &t.token {
            Token::Whitespace(_) => continue,
            Token::LParen | Token::LBracket => {
                levels.push(Level::default());
                depth += 1;
            }
            Token::RParen | Token::RBracket => {
                if levels.len() > 1 {
                    if let Some(l) = levels.pop() {
                        depth = depth.saturating_sub(l.run + l.sets + 1);
                    }
                }
            }
            Token::Comma => {
                if let Some(l) = levels.last_mut() {
                    depth = depth.saturating_sub(l.run);
                    l.run = 0;
                }
            }
            Token::SemiColon => {
                levels.clear();
                levels.push(Level::default());
                depth = 1;
            }
            token => {
                if let Some(l) = levels.last_mut() {
                    let set_operator = matches!(token, Token::Word(w)
                        if matches!(w.keyword, Keyword::UNION | Keyword::INTERSECT | Keyword::EXCEPT));
                    if set_operator {
                        l.sets += 1;
                    } else {
                        l.run += 1;
                    }
                    depth += 1;
                }
            }
        }
        max = max.max(depth);
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::tokenizer::Tokenizer;

    fn depth(sql: &str) -> usize {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize_with_location()
            .unwrap();
        max_depth(&tokens)
    }

    #[test]
    fn chains_count_and_lists_do_not() {
        let chain = format!("SELECT {}1", "1 + ".repeat(1000));
        assert!(depth(&chain) > 2000);
        let rows = format!(
            "INSERT INTO t VALUES {}",
            vec!["(1, 'a', now() - interval '1 day')"; 10_000].join(", ")
        );
        assert!(depth(&rows) < 20, "{}", depth(&rows));
        // Set operations chain across the commas of their select lists.
        let union = format!("SELECT 1, 2{}", " UNION SELECT 1, 2".repeat(1000));
        assert!(depth(&union) > 1000);
        assert!(depth("SELECT (((((1)))))") < 20);
    }
}
