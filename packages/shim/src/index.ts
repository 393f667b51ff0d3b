// Public entry of @ctrd/shim. Filled in by its issue; see README.md.
export {};
