// Public entry of @ctrd/daemon. Filled in by its issue; see README.md.
export {};
