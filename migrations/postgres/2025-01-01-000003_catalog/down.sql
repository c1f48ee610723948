DROP TABLE documents;
DROP TABLE template_ownership;
DROP TABLE templates;
