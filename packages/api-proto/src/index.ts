// Public entry of @ctrd/api-proto. Filled in by its issue; see README.md.
export {};
