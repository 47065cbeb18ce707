//! Page-by-page queries as one stream.

use futures::Stream;

use crate::error::Result;

/// Turns "fetch a page, maybe get the next query" into a flat stream of items.
pub(super) fn paged<Q, T, F, Fut>(
    first: Q,
    fetch: F,
) -> impl Stream<Item = Result<T>> + Send + 'static
where
    Q: Send + 'static,
    T: Send + 'static,
    F: Fn(Q) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Vec<T>, Option<Q>)>> + Send + 'static,
{
    use futures::StreamExt;
    futures::stream::try_unfold((Some(first), fetch), |(query, fetch)| async move {
        let Some(query) = query else {
            return Ok(None);
        };
        let (items, next) = fetch(query).await?;
        Ok(Some((
            futures::stream::iter(items.into_iter().map(Ok)),
            (next, fetch),
        )))
    })
    .map(|page: Result<_>| match page {
        Ok(items) => items.left_stream(),
        Err(e) => futures::stream::once(async { Err(e) }).right_stream(),
    })
    .flatten()
}
