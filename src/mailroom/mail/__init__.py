"""Mail as data: parsing bytes into typed values, addresses, threads, HTML, attachments."""
