pub mod alma;
pub mod crosswalk;
pub mod dc;
pub mod identifier;
pub mod marc;
pub mod oai;
pub mod rosetta;
pub mod xml;
