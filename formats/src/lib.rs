pub mod dc;
pub mod identifier;
pub mod oai;
pub mod xml;
