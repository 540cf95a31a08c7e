"""CRM records and the people who use Mailroom: companies, users, leads, contacts, accounts…"""
