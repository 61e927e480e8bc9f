"""db_extension: ranked Chinese OCR full-text search and hybrid CLIP+OCR ranking in PostgreSQL."""
