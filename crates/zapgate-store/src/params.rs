//! Placeholders for the arguments of batch statements, written in the order
//! they are bound.
//!
//! On SQLite they are anonymous (`?`): SQLite looks a named parameter such
//! as `$12` up by walking a list, when it prepares the statement and again
//! when sqlx binds each argument, so a batch of thousands of `$n` arguments
//! costs the single writer time quadratic in their number. An anonymous one
//! takes the next argument, so a statement built here uses each argument
//! once, where it is written, and binds them in that order (across the
//! statements of one query, too). PostgreSQL numbers them (`$n`).

use crate::backend::Backend;

pub(crate) struct Params {
    anonymous: bool,
    next: usize,
}

impl Params {
    /// The placeholders of a statement whose arguments all come from here.
    pub(crate) fn new(backend: Backend) -> Self {
        Self {
            anonymous: backend == Backend::Sqlite,
            next: 1,
        }
    }

    /// Numbered placeholders from `$first` on either backend, for a
    /// statement that also names `$1` ... `$(first - 1)` itself.
    pub(crate) fn numbered(first: usize) -> Self {
        Self {
            anonymous: false,
            next: first,
        }
    }

    /// The next argument.
    pub(crate) fn one(&mut self) -> String {
        let k = self.next;
        self.next += 1;
        if self.anonymous {
            "?".to_owned()
        } else {
            format!("${k}")
        }
    }

    /// The next argument, typed for PostgreSQL (a bare parameter in
    /// `VALUES` is text there); SQLite takes it as it is.
    pub(crate) fn typed(&mut self, ty: &str) -> String {
        format!("CAST({} AS {ty})", self.one())
    }

    /// The next `n` arguments, comma-separated.
    pub(crate) fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.one()).collect::<Vec<_>>().join(", ")
    }

    /// `rows` parenthesised rows of `columns` arguments each.
    pub(crate) fn rows(&mut self, rows: usize, columns: usize) -> String {
        (0..rows)
            .map(|_| format!("({})", self.list(columns)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `rows` parenthesised rows with one typed argument per type.
    pub(crate) fn typed_rows(&mut self, rows: usize, types: &[&str]) -> String {
        (0..rows)
            .map(|_| {
                let cells = types.iter().map(|ty| self.typed(ty)).collect::<Vec<_>>();
                format!("({})", cells.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The rows a batch statement of `n` rows is written for: `n` rounded up
/// to a power of two (see [`padded`]).
pub(crate) fn bucket(n: usize) -> usize {
    if n == 0 { 0 } else { n.next_power_of_two() }
}

/// `items`, then the last one again until there are [`bucket`] of them. A
/// batch statement's text then depends on its size's bucket only: each
/// connection prepares (and PostgreSQL plans) a few texts once, where a
/// text per size (about 130 of each batch statement in a bench run) churned
/// sqlx's statement cache, so most batches were parsed and planned anew.
/// Each statement padded so ignores a repeated row (`ON CONFLICT DO
/// NOTHING`, `IN (...)`).
pub(crate) fn padded<T>(items: &[T]) -> impl Iterator<Item = &T> {
    let extra = bucket(items.len()) - items.len();
    items
        .iter()
        .chain(std::iter::repeat_n(items.last(), extra).flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_padded_to_a_power_of_two_with_their_last_row() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 1);
        assert_eq!(bucket(5), 8);
        assert_eq!(bucket(128), 128);
        let five = [1, 2, 3, 4, 5];
        assert_eq!(
            padded(&five).copied().collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 5, 5, 5]
        );
        assert_eq!(padded(&[7, 8]).count(), 2);
        assert_eq!(padded::<u8>(&[]).count(), 0);
    }

    #[test]
    fn postgres_numbers_in_order_and_sqlite_leaves_them_anonymous() {
        let mut pg = Params::new(Backend::Postgres);
        assert_eq!(pg.rows(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(
            pg.typed_rows(1, &["TEXT", "BIGINT"]),
            "(CAST($5 AS TEXT), CAST($6 AS BIGINT))"
        );
        assert_eq!(pg.one(), "$7");
        let mut sqlite = Params::new(Backend::Sqlite);
        assert_eq!(sqlite.rows(1, 3), "(?, ?, ?)");
        assert_eq!(sqlite.typed("BIGINT"), "CAST(? AS BIGINT)");
        let mut after = Params::numbered(6);
        assert_eq!(after.list(2), "$6, $7");
    }
}
