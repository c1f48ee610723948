DROP TABLE dashboard_token_cutoffs;
