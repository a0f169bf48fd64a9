// Anchor for the shared torch precompiled header; see Note [one precompiled torch header].
