//! TODO(helper): see ARCHITECTURE.md
