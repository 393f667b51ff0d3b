// Public entry of @ctrd/metrics. Filled in by its issue; see README.md.
export {};
