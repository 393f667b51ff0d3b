// Public entry of @ctrd/runc-client. Filled in by its issue; see README.md.
export {};
