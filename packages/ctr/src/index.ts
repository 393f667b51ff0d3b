// Public entry of @ctrd/ctr. Filled in by its issue; see README.md.
export {};
