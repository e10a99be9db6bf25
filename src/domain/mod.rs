//! Plain market and content data with no I/O: what flows between the actors.
//! Nothing here knows about actors, databases or sockets, so it is tested with plain unit tests.

pub mod batch;
pub mod candle;
pub mod interval;
pub mod news;
pub mod symbol;
pub mod trade;

pub use batch::MarketBatch;
pub use candle::{Candle, CandleBook};
pub use interval::Interval;
pub use news::{Article, NewsSource, ProcessingStatus, RawArticle};
pub use symbol::SymbolInfo;
pub use trade::{Symbol, Trade};
