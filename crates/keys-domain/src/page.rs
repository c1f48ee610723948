//! Pagination: every list is read one page at a time, newest first.
//!
//! A store reads `limit + 1` rows from an index in list order, starting after the cursor; the
//! extra row only says whether there is more ([`Page::from_overfetch`]). So a request costs the
//! same whether the list holds ten items or a million.

use crate::ports::StoreError;

/// How many items a page holds: 1 to 100, 20 when the client does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u8);

/// The limit is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("limit must be a whole number from 1 to 100")]
pub struct InvalidPageLimit;

impl PageLimit {
    pub const DEFAULT: Self = Self(20);
    pub const MAX: Self = Self(100);

    /// # Errors
    /// [`InvalidPageLimit`] outside 1..=100.
    pub fn new(n: u64) -> Result<Self, InvalidPageLimit> {
        match u8::try_from(n) {
            Ok(n) if (1..=Self::MAX.0).contains(&n) => Ok(Self(n)),
            _ => Err(InvalidPageLimit),
        }
    }

    #[must_use]
    pub const fn get(self) -> usize {
        self.0 as usize
    }

    /// How many rows a store reads for this page: one more than it returns.
    #[must_use]
    pub const fn fetch(self) -> i64 {
        self.0 as i64 + 1
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Which page to read: up to `limit` items after the item `after` names (in list order, so
/// older ones), or from the newest when `after` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<C> {
    pub limit: PageLimit,
    pub after: Option<C>,
}

impl<C> PageRequest<C> {
    /// The newest `limit` items.
    #[must_use]
    pub const fn first(limit: PageLimit) -> Self {
        Self { limit, after: None }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Whether items follow the last one.
    pub has_more: bool,
}

impl<T> Page<T> {
    /// The page from up to `limit + 1` rows read in list order.
    #[must_use]
    pub fn from_overfetch(mut rows: Vec<T>, limit: PageLimit) -> Self {
        let has_more = rows.len() > limit.get();
        rows.truncate(limit.get());
        Self {
            items: rows,
            has_more,
        }
    }

    /// The same page with each item converted, failing on the first bad one.
    ///
    /// # Errors
    /// The first error of `f`.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            has_more: self.has_more,
        })
    }
}

/// Why a page could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// `starting_after` names no item of this list (unknown, or another user's).
    #[error("starting_after does not name an item of this list")]
    UnknownCursor,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_1_to_100() {
        assert_eq!(PageLimit::new(0), Err(InvalidPageLimit));
        assert_eq!(PageLimit::new(1).map(PageLimit::get), Ok(1));
        assert_eq!(PageLimit::new(100).map(PageLimit::get), Ok(100));
        assert_eq!(PageLimit::new(101), Err(InvalidPageLimit));
        assert_eq!(PageLimit::new(256 + 5), Err(InvalidPageLimit));
        assert_eq!(PageLimit::new(u64::MAX), Err(InvalidPageLimit));
        assert_eq!(PageLimit::default().get(), 20);
        assert_eq!(PageLimit::MAX.fetch(), 101);
    }

    #[test]
    fn the_extra_row_only_says_there_is_more() {
        let two = PageLimit::new(2).unwrap();
        assert_eq!(
            Page::from_overfetch(vec![1, 2, 3], two),
            Page {
                items: vec![1, 2],
                has_more: true
            }
        );
        assert_eq!(
            Page::from_overfetch(vec![1, 2], two),
            Page {
                items: vec![1, 2],
                has_more: false
            }
        );
        assert_eq!(
            Page::from_overfetch(Vec::<u8>::new(), two),
            Page {
                items: vec![],
                has_more: false
            }
        );
    }
}
